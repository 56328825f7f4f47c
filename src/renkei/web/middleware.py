"""ASGI middleware: request id + access log without PHI, body size limit, security headers."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renkei.web import static_assets

access_log = logging.getLogger("renkei.access")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Not "no-referrer": under it browsers send `Origin: null` with same-origin form posts, which the CSRF
    # origin check must refuse. "same-origin" still sends nothing to any other site.
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), microphone=()"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]
# Only the docs pages need a CDN-free relaxed policy: FastAPI's Swagger UI loads inline script.
_DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class RequestContextMiddleware:
    """Assigns a request id, logs one structured line per request, and sets security headers.

    The log line holds method, route template, status, duration and ids: never query strings,
    bodies, headers or path values beyond opaque ids, so no PHI, password or token can leak into logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500
        path = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                for name, value in _SECURITY_HEADERS:
                    if name == b"content-security-policy" and path.startswith(_DOCS_PATHS):
                        continue
                    if name not in names:
                        headers.append((name, value))
                if b"cache-control" not in names:
                    static = path.startswith(static_assets.PREFIX) and status in (200, 304)
                    cache = (static_assets.cache_control(path, scope.get("query_string", b"")) if static
                             else b"no-store")
                    headers.append((b"cache-control", cache))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            record: dict[str, Any] = {
                "request_id": request_id,
                "method": scope.get("method"),
                "route": route_template(scope),
                "status": status,
                "ms": round((time.perf_counter() - start) * 1000, 1),
            }
            user_id = scope.get("state", {}).get("user_id")
            if user_id:
                record["user_id"] = str(user_id)
            access_log.info(json.dumps(record))


def route_template(scope: Scope) -> str:
    """The matched route's template with its router prefix: '/api/v1/patients/{patient_id}'.

    FastAPI no longer copies included routes under their prefix, so `scope["route"].path` is the
    template inside its router ('/patients/{patient_id}', shared by the API and the HTML page). The
    prefix is recovered from the concrete path by removing the rendered template from its end; path
    values themselves never reach the log.
    """
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "<unmatched>"
    rendered = template
    for name, value in (scope.get("path_params") or {}).items():
        rendered = re.sub(r"\{" + re.escape(name) + r"(:[^}]*)?\}", lambda _m, v=str(value): v, rendered)
    path = scope.get("path", "")
    if rendered and path.endswith(rendered):
        return path[: len(path) - len(rendered)] + template
    return template


class BodyLimitMiddleware:
    """Reject bodies over the limit with 413 before the application reads them."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int, upload_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_upload = any(path.startswith(p) or path.endswith(p) for p in self.upload_prefixes)
        # Multipart framing adds a little; allow 64 KiB over the file limit for it.
        limit = self.max_upload + 65536 if is_upload else self.max_body
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # FastAPI turns an exception raised while it reads the body into its own 400 response;
            # once the limit is hit the client must get the 413 below instead.
            if too_large:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _reject(send)


class _TooLarge(Exception):
    pass


async def _reject(send: Send) -> None:
    body = json.dumps({"error": "payload_too_large", "detail": "Request body too large", "fields": []}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
