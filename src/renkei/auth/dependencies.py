"""Request dependencies: settings, keyring, and the signed-in actor (bearer token or cookie + CSRF)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from renkei.auth import service
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.errors import Forbidden, NotAuthenticated

SESSION_COOKIE = "renkei_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths an admin who has not enrolled TOTP yet may still use: enrolment itself and signing out.
_ENROLMENT_PATHS = ("/api/v1/me", "/api/v1/auth/", "/account/2fa", "/logout")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_keyring(request: Request) -> Keyring:
    return request.app.state.keyring


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_actor(request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyringDep) -> Actor:
    """Resolve the actor from `Authorization: Bearer` or the session cookie; cookie writes need CSRF."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        actor = service.actor_from_access_token(session, settings=settings, keyring=keyring, token=token.strip())
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise NotAuthenticated()
        actor = service.actor_from_cookie(session, settings=settings, cookie=cookie)
        if request.method not in SAFE_METHODS:
            await _check_csrf(request, session, actor, settings)
    request.state.user_id = actor.user_id
    if actor.needs_totp_enrolment and not request.url.path.startswith(_ENROLMENT_PATHS):
        raise Forbidden("Two-factor authentication must be set up first (二要素認証の設定が必要です)")
    return actor


async def _check_csrf(request: Request, session: SessionDep, actor: Actor, settings: Settings) -> None:
    origin = request.headers.get("origin")
    if origin and origin not in settings.allowed_origins:
        raise Forbidden("Cross-origin request refused")
    expected = service.csrf_token_for(session, actor.session_id) or ""
    supplied = request.headers.get(CSRF_HEADER, "")
    if not supplied and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        supplied = str(form.get("csrf_token", ""))
    if not expected or not hmac.compare_digest(expected, supplied):
        raise Forbidden("CSRF token missing or invalid")


ActorDep = Annotated[Actor, Depends(current_actor)]


def require_org_admin(actor: ActorDep) -> Actor:
    if not actor.is_org_admin:
        raise Forbidden("Organisation administrators only")
    return actor


OrgAdminDep = Annotated[Actor, Depends(require_org_admin)]
