"""Pages: sign-in, sign-out, two-factor setup, language switch."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from renkei.access.exceptions import FormRejected
from renkei.auth import enrolment, service
from renkei.auth.dependencies import (
    SESSION_COOKIE,
    ActorDep,
    KeyringDep,
    SettingsDep,
    client_ip,
    origin_allowed,
)
from renkei.config import Settings
from renkei.db.session import SessionDep
from renkei.errors import DomainError, FieldProblem, Forbidden, InvalidInput
from renkei.printing import qr
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "renkei_login_csrf"
TOTP_SETUP_PATH = "/account/2fa"
TOTP_START_PATH = "/account/2fa/start"


@router.get("/")
def home(request: Request) -> Response:
    """Signed-in users land on their patient list."""
    target = "/patients" if request.cookies.get(SESSION_COOKIE) else "/login"
    return RedirectResponse(target, status_code=303)


def _login_page(request: Request, settings: Settings, *, error: str | None = None, email: str = "",
                status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    context = {"actor": None, "login_csrf": token, "error": error, "email": email}
    response = render(request, "login.html", context, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=settings.cookie_secure, path="/login")
    return response


@router.get("/login")
def login_form(request: Request, settings: SettingsDep) -> Response:
    """The sign-in form."""
    return _login_page(request, settings)


@router.post("/login")
def login_submit(
    request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
    email: Annotated[str, Form(max_length=254)], password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "", otp: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Check the credentials and start a cookie session."""
    origin = request.headers.get("origin")
    if origin is not None and not origin_allowed(settings, origin):
        raise Forbidden("Cross-origin request refused")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        raise Forbidden("CSRF token missing or invalid")
    try:
        user = service.authenticate(session, settings=settings, keyring=keyring, email=email,
                                    password=password, otp=otp or None, client_ip=client_ip(request))
    except DomainError as exc:
        # Failure counters are persisted by the session's after-rollback work; re-render the form.
        raise LoginFailed(exc.code, email, exc.status) from exc
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        service.end_cookie_session(session, previous)
    auth, token = service.start_session(session, settings=settings, user=user, kind="web")
    needs_enrolment = service.totp_required(settings, user) and not user.totp_enabled
    response = RedirectResponse(TOTP_SETUP_PATH if needs_enrolment else "/patients", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=settings.cookie_secure, max_age=settings.session_absolute_hours * 3600, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


class LoginFailed(DomainError):
    """Carries the reason to the page handler installed in app.py without leaking which part failed."""

    status = 401

    def __init__(self, reason: str, email: str, status: int) -> None:
        super().__init__("login failed")
        self.reason, self.email, self.status_code = reason, email, status


def login_failed_page(request: Request, exc: LoginFailed) -> Response:
    return _login_page(request, request.app.state.settings, error=exc.reason, email=exc.email,
                       status=exc.status_code)


@router.post("/logout")
def logout(actor: ActorDep, session: SessionDep, settings: SettingsDep) -> Response:
    """End the cookie session and clear the cookie."""
    service.revoke_session(session, actor.session_id, reason="logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _totp_page(request: Request, session: SessionDep, actor: ActorDep, settings: Settings, *, mode: str,
               problems: Sequence[FieldProblem] = (), status: int = 200, **extra: object) -> Response:
    state = enrolment.totp_status(session, settings=settings, user_id=actor.user_id)
    ctx = page_context(request, session, actor, mode="enabled" if state.enabled else mode,
                       needs_code=state.needs_code, errors={p.path: p for p in problems}, **extra)
    return render(request, "account_2fa.html", ctx, status_code=status)


@router.get(TOTP_SETUP_PATH)
def totp_setup_page(request: Request, actor: ActorDep, session: SessionDep,
                    settings: SettingsDep) -> Response:
    """Two-factor status, or the button (and enrolment-code field) that starts setting it up. Reads only."""
    return _totp_page(request, session, actor, settings, mode="start")


@router.post(TOTP_START_PATH)
def totp_setup_start(
    request: Request, actor: ActorDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
    enrolment_code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Make a new secret and show it once, as a QR code and as text, with the field for the first code."""
    try:
        secret, uri = enrolment.begin_totp_enrolment(session, settings=settings, keyring=keyring,
                                                      user_id=actor.user_id, enrolment_code=enrolment_code)
    except InvalidInput as exc:
        # Raised, not returned: the wrong code must still count towards the account's lockout.
        raise FormRejected(_totp_page(request, session, actor, settings, mode="start", problems=exc.fields,
                                      status=422)) from exc
    return _totp_page(request, session, actor, settings, mode="scan", secret=secret, otpauth_uri=uri,
                      qr=qr.svg_data_uri(uri))


@router.post(TOTP_SETUP_PATH)
def totp_setup_confirm(
    request: Request, actor: ActorDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
    code: Annotated[str, Form(max_length=10)],
) -> Response:
    """Confirm the authenticator with its first code. A wrong code asks again without showing the secret."""
    try:
        enrolment.confirm_totp_enrolment(session, keyring=keyring, user_id=actor.user_id, code=code)
    except InvalidInput as exc:
        return _totp_page(request, session, actor, settings, mode="retry", problems=exc.fields, status=422)
    return RedirectResponse("/patients", status_code=303)


# Where the switch may send the user back to: a path of this site only (no scheme, host or `//`).
_LOCAL_PATH = re.compile(r"/(?:[A-Za-z0-9._~-][A-Za-z0-9._~/-]*)?")


@router.post("/lang")
def switch_language(lang: Annotated[str, Form(max_length=2)],
                    next_path: Annotated[str, Form(alias="next", max_length=300)] = "/") -> Response:
    """Remember the interface language (ja/en) and show the same page again."""
    local = _LOCAL_PATH.fullmatch(next_path) and "//" not in next_path and ".." not in next_path
    response = RedirectResponse(next_path if local else "/", status_code=303)
    response.set_cookie("lang", "en" if lang == "en" else "ja", samesite="lax", max_age=365 * 86400)
    return response
