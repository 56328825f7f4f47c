"""Errors of the access domain."""

from __future__ import annotations

from starlette.responses import Response

from renkei.errors import DomainError, FieldProblem, Forbidden


class ReauthenticationFailed(Forbidden):
    """The re-entered password (or one-time code) was wrong. 403, not 401: the session itself is fine."""

    code = "reauthentication_failed"
    detail_default = "Re-authentication failed"

    def __init__(self, *, otp: bool = False) -> None:
        problem = (
            FieldProblem("/otp", "確認コードが正しくないか、入力されていません", "The one-time code is missing or incorrect")
            if otp else FieldProblem("/password", "パスワードが正しくありません", "The password is incorrect")
        )
        super().__init__(fields=[problem])


class FormRejected(DomainError):
    """A form page re-rendered with its problems. Raised (not returned) so that the request's
    transaction rolls back and its after-rollback work (failure counters, audit denials) persists;
    app.py's handler sends the already rendered page."""

    def __init__(self, response: Response) -> None:
        super().__init__("form rejected")
        self.response = response
        self.status = response.status_code  # type: ignore[misc]
