"""DomainError family: each error carries its HTTP status and a stable code.

JSON shape (API contract): {"error": code, "detail": message, "fields": [{path, message_ja, message_en}]}.
Details never contain patient data, passwords or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    path: str
    message_ja: str
    message_en: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message_ja": self.message_ja, "message_en": self.message_en}


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    detail_default: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        fields: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.detail_default
        self.fields = fields or []
        self.headers = headers or {}
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "detail": self.detail,
            "fields": [f.as_dict() for f in self.fields],
        }


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    detail_default = "Some fields are invalid"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"
    detail_default = "Sign-in required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    detail_default = "The email address or password is incorrect"


class OtpRequired(NotAuthenticated):
    code = "otp_required"
    detail_default = "A one-time code is required"


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"
    detail_default = "Too many attempts; try again later"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    detail_default = "You are not allowed to do this"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    detail_default = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    detail_default = "Conflict with the current state"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"
    detail_default = "The resource has changed"


class PreconditionRequired(DomainError):
    status = 428
    code = "precondition_required"
    detail_default = "If-Match header required"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    detail_default = "Request body too large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    detail_default = "Unsupported media type"
