"""Sign-in, sessions, refresh-token rotation and TOTP checks (see also `throttle` and `enrolment`)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from renkei.audit import service as audit
from renkei.auth import passwords, throttle, tokens, totp
from renkei.auth.models import AuthSession, RefreshToken
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import after_rollback
from renkei.db.types import utcnow
from renkei.directory.models import Role, User
from renkei.errors import (
    FieldProblem,
    InvalidCredentials,
    NotAuthenticated,
    OtpRequired,
    TooManyAttempts,
)


@dataclass(frozen=True)
class Actor:
    """The signed-in professional for one request."""

    user_id: uuid.UUID
    organisation_id: uuid.UUID
    profession: str
    role: str
    name: str
    session_id: uuid.UUID
    session_kind: str
    needs_totp_enrolment: bool = False

    @property
    def is_org_admin(self) -> bool:
        return self.role in (Role.org_admin, Role.region_admin)

    @property
    def is_region_admin(self) -> bool:
        return self.role == Role.region_admin


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


def totp_required(settings: Settings, user: User) -> bool:
    return _needs_totp(settings, user.role, user.totp_enabled)


def _needs_totp(settings: Settings, role: str, totp_enabled: bool) -> bool:
    is_admin = role in (Role.org_admin, Role.region_admin)
    return totp_enabled or settings.require_2fa == "all" or is_admin


SIGN_IN = "auth.sign_in"  # audit event of every sign-in attempt (ids and codes; never the email or password)


# -- sign-in -------------------------------------------------------------------------------


def authenticate(
    session: Session, *, settings: Settings, keyring: Keyring, email: str, password: str,
    otp: str | None, client_ip: str,
) -> User:
    """Check credentials (and TOTP); failures are counted even though the request fails."""
    now = utcnow()
    keys = {"account_key": throttle.account_key(keyring, email),
            "ip_key": throttle.ip_key(keyring, client_ip)}
    try:
        throttle.check(session, settings, now, **keys)
    except TooManyAttempts:
        audit.record_account(session, actor=None, event=SIGN_IN, account=None, allowed=False,
                             reason="throttled")
        raise
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    ok, new_hash = passwords.verify(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        after_rollback(session, lambda s: throttle.record_failure(s, settings, now, **keys))
        reason = "unknown_account" if user is None else "wrong_password" if not ok else "account_disabled"
        audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False, reason=reason)
        raise InvalidCredentials()
    if user.totp_enabled:
        if not otp:
            audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False,
                                 reason="otp_required")
            raise OtpRequired()
        step = totp.accept(totp_secret(keyring, user), otp, user.totp_last_step)
        if step is None or not _spend_totp_step(session, user, step):
            after_rollback(session, lambda s: throttle.record_failure(s, settings, now, **keys))
            audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False,
                                 reason="wrong_otp")
            raise InvalidCredentials("The one-time code is incorrect or already used")
    if new_hash:
        user.password_hash = new_hash
    throttle.clear_account_failures(session, keys["account_key"], now)
    session.flush()
    audit.record_account(session, actor=None, event=SIGN_IN, account=user)
    return user


def reauthenticate(
    session: Session, *, settings: Settings, keyring: Keyring, user_id: uuid.UUID, password: str,
    otp: str | None,
) -> None:
    """Re-check the password (and TOTP if enrolled) before a sensitive action; throttled like sign-in.

    Without the throttle a stolen access token would be an unlimited password-guessing oracle.
    """
    now = utcnow()
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotAuthenticated("Session ended")
    account_key = throttle.account_key(keyring, user.email)
    throttle.check(session, settings, now, account_key=account_key)
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok:
        after_rollback(session, lambda s: throttle.record_failure(s, settings, now, account_key=account_key))
        raise InvalidCredentials("The password is incorrect")
    if user.totp_enabled:
        step = totp.accept(totp_secret(keyring, user), otp or "", user.totp_last_step)
        if step is None or not _spend_totp_step(session, user, step):
            if otp:
                after_rollback(session,
                               lambda s: throttle.record_failure(s, settings, now, account_key=account_key))
            raise OtpRequired("A valid one-time code is required")
    if new_hash:
        user.password_hash = new_hash
    session.flush()


def start_session(session: Session, *, settings: Settings, user: User, kind: str) -> tuple[AuthSession, str]:
    """Create a sign-in session; returns it and the opaque token (cookie value or first refresh token)."""
    now = utcnow()
    token = tokens.new_opaque()
    if kind == "web":
        auth = AuthSession(
            user_id=user.id, kind="web", token_hash=tokens.digest(token),
            csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
        )
        session.add(auth)
    else:
        auth = AuthSession(
            user_id=user.id, kind="api", created_at=now, last_seen_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
        session.add(auth)
        session.flush()
        session.add(RefreshToken(session_id=auth.id, token_hash=tokens.digest(token), created_at=now,
                                 expires_at=auth.expires_at))
    session.flush()
    return auth, token


def issue_tokens(settings: Settings, keyring: Keyring, auth: AuthSession, refresh_token: str) -> IssuedTokens:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    access = tokens.issue_access(
        keyring.token_key, user_id=auth.user_id, session_id=auth.id, issuer=settings.token_issuer,
        audience=settings.token_audience, now=utcnow(), lifetime=lifetime,
    )
    return IssuedTokens(access, refresh_token, int(lifetime.total_seconds()), auth.id)


def refresh(session: Session, *, settings: Settings, keyring: Keyring, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token; presenting a spent one revokes its whole family."""
    now = utcnow()
    digest = tokens.digest(refresh_token)
    row = session.scalars(select(RefreshToken).where(RefreshToken.token_hash == digest)).first()
    if row is None:
        raise NotAuthenticated("Invalid refresh token")
    if row.used_at is not None:
        _reject_reuse(session, row.session_id)
    auth = session.get(AuthSession, row.session_id)
    user = session.get(User, auth.user_id) if auth else None
    if (
        auth is None or auth.revoked_at is not None or auth.expires_at <= now or row.expires_at <= now
        or user is None or not user.active
    ):
        raise NotAuthenticated("Invalid refresh token")
    # Compare-and-set: of two requests racing with the same token only one may spend it; the other is a reuse.
    spent = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if spent.rowcount != 1:
        _reject_reuse(session, row.session_id)
    new_token = tokens.new_opaque()
    session.add(RefreshToken(session_id=auth.id, token_hash=tokens.digest(new_token), created_at=now,
                             expires_at=auth.expires_at))
    auth.last_seen_at = now
    session.flush()
    return issue_tokens(settings, keyring, auth, new_token)


def _reject_reuse(session: Session, session_id: uuid.UUID) -> NoReturn:
    # A spent token presented again means it was copied: end the sign-in, whoever holds the newer tokens.
    after_rollback(session, lambda s: revoke_session(s, session_id, reason="refresh_reuse"))
    raise NotAuthenticated("Invalid refresh token")


# Sign-ins ended in this transaction: a pre-commit hook (renkei.notify) turns them into events that close
# their open sockets in every process. A key, not a call, because auth must not depend on notify.
ENDED_SESSIONS_KEY = "auth.ended_sessions"


def revoke_session(session: Session, session_id: uuid.UUID, *, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason),
        execution_options={"synchronize_session": "fetch"},
    )
    session.info.setdefault(ENDED_SESSIONS_KEY, []).append({"session_id": session_id})


def revoke_all_sessions(
    session: Session, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
) -> None:
    """End every session of a user (disable, password change), optionally keeping the current one."""
    q = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        q = q.where(AuthSession.id != keep)
    session.execute(q.values(revoked_at=utcnow(), revoked_reason=reason),
                    execution_options={"synchronize_session": "fetch"})
    session.info.setdefault(ENDED_SESSIONS_KEY, []).append({"user_id": user_id, "keep": keep})


# -- resolving the actor of a request -------------------------------------------------------


_auth_t, _user_t = AuthSession.__table__, User.__table__  # type: ignore[attr-defined]
# Every API request runs this: the sign-in session and its user in one round trip, as plain columns.
_BEARER_SESSION = (
    select(_auth_t.c.id, _auth_t.c.kind, _auth_t.c.user_id, _auth_t.c.expires_at, _auth_t.c.revoked_at,
           _user_t.c.id.label("found_user_id"), _user_t.c.organisation_id, _user_t.c.profession,
           _user_t.c.role, _user_t.c.name, _user_t.c.active, _user_t.c.totp_enabled)
    .select_from(_auth_t.outerjoin(_user_t, _user_t.c.id == _auth_t.c.user_id))
    .where(_auth_t.c.id == bindparam("session_id"))
)


def access_claims(*, settings: Settings, keyring: Keyring, token: str) -> tokens.AccessClaims:
    """A bearer token's verified claims (no database: the session and account are not checked here)."""
    try:
        return tokens.decode_access(keyring.token_key, token, issuer=settings.token_issuer,
                                    audience=settings.token_audience)
    except tokens.InvalidToken as exc:
        raise NotAuthenticated("Invalid or expired token") from exc


def actor_from_access_token(session: Session, *, settings: Settings, keyring: Keyring, token: str) -> Actor:
    """The actor of a bearer token; the sign-in session and the account are checked on every request."""
    claims = access_claims(settings=settings, keyring=keyring, token=token)
    row = session.execute(_BEARER_SESSION, {"session_id": claims.session_id}).first()
    if row is None or row.kind != "api" or row.user_id != claims.user_id:
        raise NotAuthenticated("Invalid or expired token")
    if row.revoked_at is not None or row.expires_at <= utcnow():
        raise NotAuthenticated("Session ended")
    if row.found_user_id is None or not row.active:
        raise NotAuthenticated("Session ended")
    return Actor(
        user_id=row.user_id, organisation_id=row.organisation_id, profession=row.profession, role=row.role,
        name=row.name, session_id=row.id, session_kind=row.kind,
        needs_totp_enrolment=_needs_totp(settings, row.role, row.totp_enabled) and not row.totp_enabled,
    )


def actor_from_cookie(session: Session, *, settings: Settings, cookie: str) -> Actor:
    auth = session.scalars(select(AuthSession).where(AuthSession.token_hash == tokens.digest(cookie))).first()
    if auth is None or auth.kind != "web":
        raise NotAuthenticated()
    now = utcnow()
    if auth.revoked_at is None and now - auth.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        # Shared tablets: an idle session is ended for good, so the revocation outlives this failed request.
        session_id = auth.id
        after_rollback(session, lambda s: revoke_session(s, session_id, reason="idle"))
        raise NotAuthenticated("Session ended after inactivity")
    actor = _actor_for(session, settings, auth)
    if now - auth.last_seen_at > timedelta(seconds=30):
        auth.last_seen_at = now
    return actor


def _actor_for(session: Session, settings: Settings, auth: AuthSession) -> Actor:
    if auth.revoked_at is not None or auth.expires_at <= utcnow():
        raise NotAuthenticated("Session ended")
    user = session.get(User, auth.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("Session ended")
    return Actor(
        user_id=user.id, organisation_id=user.organisation_id, profession=user.profession, role=user.role,
        name=user.name, session_id=auth.id, session_kind=auth.kind,
        needs_totp_enrolment=totp_required(settings, user) and not user.totp_enabled,
    )


def csrf_token_for(session: Session, session_id: uuid.UUID) -> str | None:
    auth = session.get(AuthSession, session_id)
    return auth.csrf_token if auth else None


def end_cookie_session(session: Session, cookie: str) -> None:
    """Revoke the browser session a cookie names: a new sign-in on a shared tablet replaces the last one."""
    auth = session.scalars(select(AuthSession).where(AuthSession.token_hash == tokens.digest(cookie))).first()
    if auth is not None and auth.kind == "web":
        revoke_session(session, auth.id, reason="replaced")


# -- TOTP ----------------------------------------------------------------------------------------


def _spend_totp_step(session: Session, user: User, step: int) -> bool:
    """Record a code's time step as used, once. The check in `totp.accept` read a value that a concurrent
    sign-in with the same code may be changing; this compare-and-set is decided by the database (on
    PostgreSQL the second UPDATE waits for the first to commit, then matches no row)."""
    spent = session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step),
        execution_options={"synchronize_session": False},
    )
    if spent.rowcount != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def totp_secret(keyring: Keyring, user: User) -> str:
    """The user's TOTP secret (enabled or pending), unsealed."""
    if user.totp_secret is None:
        raise InvalidCredentials()
    sealed = keyring.open_secret(user.totp_secret, aad="user_account.totp_secret", binding=str(user.id))
    return sealed.decode()


def disable_totp(session: Session, *, user: User) -> None:
    """Remove a user's second factor (self with re-auth, or an org admin's 2FA reset)."""
    user.totp_enabled, user.totp_secret, user.totp_last_step = False, None, None
    session.flush()


def otp_problem() -> FieldProblem:
    return FieldProblem("/code", "確認コードが正しくありません", "The code is incorrect")
