"""Pages: sign-in, sign-out, two-factor setup, language switch."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from renkei.auth import service
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
from renkei.errors import DomainError, Forbidden, InvalidInput
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "renkei_login_csrf"
TOTP_SETUP_PATH = "/account/2fa"


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


def _totp_page(request: Request, session: SessionDep, actor: ActorDep, keyring: KeyringDep, *,
               error: str | None = None, status: int = 200) -> Response:
    setup = service.totp_setup(session, keyring=keyring, user_id=actor.user_id)
    ctx = page_context(request, session, actor, enabled=setup.enabled, secret=setup.secret,
                       otpauth_uri=setup.otpauth_uri, error=error)
    return render(request, "account_2fa.html", ctx, status_code=status)


@router.get(TOTP_SETUP_PATH)
def totp_setup_page(request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep) -> Response:
    """Two-factor setup: the secret and otpauth URI to type into an authenticator app, and a code field."""
    return _totp_page(request, session, actor, keyring)


@router.post(TOTP_SETUP_PATH)
def totp_setup_confirm(
    request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    code: Annotated[str, Form(max_length=10)],
) -> Response:
    """Confirm the authenticator with its first code; wrong codes re-render the page."""
    try:
        service.confirm_totp_enrolment(session, keyring=keyring, user_id=actor.user_id, code=code)
    except InvalidInput:
        return _totp_page(request, session, actor, keyring, error="totp_code_incorrect", status=422)
    return RedirectResponse("/patients", status_code=303)


@router.post("/lang")
def switch_language(lang: Annotated[str, Form(max_length=2)]) -> Response:
    """Remember the interface language (ja/en)."""
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("lang", "en" if lang == "en" else "ja", samesite="lax", max_age=365 * 86400)
    return response
