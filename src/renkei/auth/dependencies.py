"""Request dependencies: settings, keyring, and the signed-in actor (bearer token or cookie + CSRF)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from renkei.auth import service
from renkei.auth.exceptions import TotpEnrolmentRequired
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep, worker_session
from renkei.errors import Forbidden, NotAuthenticated

T = TypeVar("T")
SESSION_COOKIE = "renkei_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Paths an account that must enrol TOTP may still use: enrolment itself, who-am-I and signing out.
# Matched exactly: a prefix would open every future route below it.
ENROLMENT_PATHS = frozenset({
    "/api/v1/me", "/api/v1/auth/logout", "/api/v1/auth/totp/enrol", "/api/v1/auth/totp/confirm",
    "/account/2fa", "/account/2fa/start", "/logout",
})


# Async although they only read app state: FastAPI runs a sync dependency in the thread pool, and these are
# on every request, so each would cost a thread hop for an attribute read.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_keyring(request: Request) -> Keyring:
    return request.app.state.keyring


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def origin_allowed(settings: Settings, origin: str) -> bool:
    """Whether a browser's `Origin` is ours: the configured allow-list or the public URL's own origin."""
    public = urlsplit(settings.public_url)
    return origin in settings.allowed_origins or origin == f"{public.scheme}://{public.netloc}"


def _bearer_token(request: Request) -> str | None:
    """The `Authorization: Bearer` token; None without the header; 401 for another scheme or an empty one."""
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated()
    return token.strip()


def signed_in_actor(
    request: Request, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
) -> Actor:
    """The actor named by `Authorization: Bearer` or, without that header, by the session cookie."""
    token = _bearer_token(request)
    if token is not None:
        return service.actor_from_access_token(session, settings=settings, keyring=keyring, token=token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated()
    return service.actor_from_cookie(session, settings=settings, cookie=cookie)


async def credentials_presented(request: Request, settings: SettingsDep, keyring: KeyringDep) -> None:
    """401 for a request with no credentials or a bearer token that does not verify, before FastAPI
    validates the route's parameters: for `run_signed_in` routes, which sign the actor in only in the
    handler, so that an anonymous caller learns nothing from 422s (as with `ActorDep`). On the event loop:
    no database, and a token is verified once per process (tokens.decode_access)."""
    token = _bearer_token(request)
    if token is not None:
        service.access_claims(settings=settings, keyring=keyring, token=token)
    elif not request.cookies.get(SESSION_COOKIE):
        raise NotAuthenticated()


CredentialsPresented = Depends(credentials_presented)


async def submitted_csrf_token(
    request: Request, actor: Annotated[Actor, Depends(signed_in_actor)],
) -> str:
    """The CSRF token a cookie-authenticated write carries: the `X-CSRF-Token` header, or the `csrf_token`
    field of a form post.

    Depends on the resolved actor so that a form body is parsed only for a live cookie session: an anonymous
    client (or a bearer client, which needs no CSRF token) cannot make the server parse a large multipart
    body here. Async because reading a form is; the actor lookup stays a sync dependency, in the thread pool.
    """
    if request.method in SAFE_METHODS or actor.session_kind != "web":
        return ""
    supplied = request.headers.get(CSRF_HEADER, "")
    if not supplied and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else ""
    return supplied


async def current_actor(
    request: Request, session: SessionDep, settings: SettingsDep,
    actor: Annotated[Actor, Depends(signed_in_actor)],
    csrf_token: Annotated[str, Depends(submitted_csrf_token)],
) -> Actor:
    """The signed-in actor of this request; cookie writes need the session's CSRF token."""
    # run_signed_in signs in the same way for its read routes (signed_in_actor, then _admit): a check added
    # here for safe methods belongs in _admit. Async, with the one database read in the thread pool: most
    # requests (bearer, or cookie reads) need no database work here and so no thread hop.
    if actor.session_kind == "web" and request.method not in SAFE_METHODS:
        await run_in_threadpool(_check_csrf, request, session, actor, settings, csrf_token)
    return _admit(request, actor)


def _admit(request: Request, actor: Actor) -> Actor:
    request.state.user_id = actor.user_id
    if actor.needs_totp_enrolment and _app_path(request) not in ENROLMENT_PATHS:
        raise TotpEnrolmentRequired()
    return actor


async def run_signed_in(request: Request, work: Callable[[Session, Actor], T]) -> T:
    """For the busiest read routes: open the request's session, sign the actor in (as `ActorDep` does), run
    `work(session, actor)` and end the transaction, all in one worker thread (`db.session.worker_session`).
    The route declares `dependencies=[CredentialsPresented]` and takes no `SessionDep`.

    With `ActorDep`, a sync handler and the session dependency, a request takes three thread-pool hops (the
    actor's lookup, the handler, the commit); on a loaded two-core machine each costs about a millisecond.
    Without the session dependency FastAPI solves no generator dependency either (an exit stack per request).
    Reads only: a write needs `ActorDep`'s CSRF check, which reads the form body asynchronously.
    """
    if request.method not in SAFE_METHODS:
        raise RuntimeError("run_signed_in serves safe methods only")
    state = request.app.state

    def unit() -> T:
        with worker_session(request) as session:
            actor = _admit(request, signed_in_actor(request, session, state.settings, state.keyring))
            result = work(session, actor)
        return result

    return await run_in_threadpool(unit)


def _app_path(request: Request) -> str:
    path, root = request.scope["path"], request.scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _check_csrf(request: Request, session: Session, actor: Actor, settings: Settings, supplied: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and not origin_allowed(settings, origin):
        raise Forbidden("Cross-origin request refused")
    expected = service.csrf_token_for(session, actor.session_id) or ""
    if not expected or not hmac.compare_digest(expected.encode(), supplied.encode()):
        raise Forbidden("CSRF token missing or invalid")


ActorDep = Annotated[Actor, Depends(current_actor)]


async def require_org_admin(actor: ActorDep) -> Actor:
    if not actor.is_org_admin:
        raise Forbidden("Organisation administrators only")
    return actor


OrgAdminDep = Annotated[Actor, Depends(require_org_admin)]
