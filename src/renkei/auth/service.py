"""Sign-in, sessions, refresh-token rotation, throttling and TOTP enrolment."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from renkei.auth import passwords, tokens, totp
from renkei.auth.models import AuthSession, LoginThrottle, RefreshToken
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import after_rollback
from renkei.db.types import utcnow
from renkei.directory.models import Role, User
from renkei.errors import (
    FieldProblem,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
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
    return user.totp_enabled or settings.require_2fa == "all" or user.role in (Role.org_admin, Role.region_admin)


# -- throttling ----------------------------------------------------------------------------


def _throttle_keys(keyring: Keyring, email: str, client_ip: str) -> tuple[str, str]:
    # Keyed digests: the table never holds an email address or client address in clear.
    return (
        "acct:" + keyring.blind_index("login-email", email.strip().lower())[:40],
        "ip:" + keyring.blind_index("login-ip", client_ip)[:40],
    )


def _check_throttle(session: Session, settings: Settings, keys: tuple[str, str], now: datetime) -> None:
    acct_key, ip_key = keys
    rows = {r.key: r for r in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
    acct, ip = rows.get(acct_key), rows.get(ip_key)
    if acct and acct.locked_until and acct.locked_until > now:
        raise TooManyAttempts(headers={"Retry-After": str(int((acct.locked_until - now).total_seconds()) + 1)})
    window = timedelta(minutes=settings.login_ip_window_minutes)
    if ip and ip.window_start + window > now and ip.failures >= settings.login_ip_max_attempts:
        raise TooManyAttempts(headers={"Retry-After": str(int((ip.window_start + window - now).total_seconds()) + 1)})


def _record_failure(session: Session, settings: Settings, keys: tuple[str, str], now: datetime) -> None:
    acct_key, ip_key = keys
    window = timedelta(minutes=settings.login_ip_window_minutes)
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_start=now)
            session.add(row)
        if key == ip_key and row.window_start + window <= now:
            row.failures, row.window_start = 0, now
        if key == acct_key and row.locked_until and row.locked_until <= now:
            row.failures, row.locked_until = 0, None
        row.failures += 1
        if key == acct_key and row.failures >= settings.login_max_failures:
            # Back off exponentially past the threshold, capped at a day.
            over = row.failures - settings.login_max_failures
            minutes = min(settings.login_lockout_minutes * (2**over), 24 * 60)
            row.locked_until = now + timedelta(minutes=minutes)
    session.flush()


def _clear_account_failures(session: Session, acct_key: str) -> None:
    row = session.get(LoginThrottle, acct_key)
    if row is not None:
        row.failures, row.locked_until = 0, None


# -- sign-in -------------------------------------------------------------------------------


def authenticate(
    session: Session, *, settings: Settings, keyring: Keyring, email: str, password: str,
    otp: str | None, client_ip: str,
) -> User:
    """Check credentials (and TOTP); failures are counted even though the request fails."""
    now = utcnow()
    keys = _throttle_keys(keyring, email, client_ip)
    _check_throttle(session, settings, keys, now)
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    ok, new_hash = passwords.verify(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        after_rollback(session, lambda s: _record_failure(s, settings, keys, now))
        raise InvalidCredentials()
    if user.totp_enabled:
        if not otp:
            raise OtpRequired()
        step = totp.accept(_totp_secret(keyring, user), otp, user.totp_last_step)
        if step is None:
            after_rollback(session, lambda s: _record_failure(s, settings, keys, now))
            raise InvalidCredentials("The one-time code is incorrect or already used")
        user.totp_last_step = step
    if new_hash:
        user.password_hash = new_hash
    _clear_account_failures(session, keys[0])
    session.flush()
    return user


def reauthenticate(session: Session, *, keyring: Keyring, user_id: uuid.UUID, password: str, otp: str | None) -> None:
    """Re-check the password (and TOTP if enrolled) before a sensitive action."""
    user = session.get(User, user_id)
    ok, _ = passwords.verify(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        raise InvalidCredentials("The password is incorrect")
    if user.totp_enabled:
        step = totp.accept(_totp_secret(keyring, user), otp or "", user.totp_last_step)
        if step is None:
            raise OtpRequired("A valid one-time code is required")
        user.totp_last_step = step
        session.flush()


def start_session(session: Session, *, settings: Settings, user: User, kind: str) -> tuple[AuthSession, str]:
    """Create a sign-in session; returns it and the opaque token (cookie value or first refresh token)."""
    now = utcnow()
    token = tokens.new_opaque()
    if kind == "web":
        auth = AuthSession(
            user_id=user.id, kind="web", token_hash=tokens.digest(token), csrf_token=secrets.token_urlsafe(32),
            created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=settings.session_absolute_hours),
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
    row = session.scalars(select(RefreshToken).where(RefreshToken.token_hash == tokens.digest(refresh_token))).first()
    if row is None:
        raise NotAuthenticated("Invalid refresh token")
    auth = session.get(AuthSession, row.session_id)
    if row.used_at is not None:
        after_rollback(session, lambda s: revoke_session(s, row.session_id, reason="refresh_reuse"))
        raise NotAuthenticated("Invalid refresh token")
    user = session.get(User, auth.user_id) if auth else None
    if auth is None or auth.revoked_at or auth.expires_at <= now or row.expires_at <= now or not user or not user.active:
        raise NotAuthenticated("Invalid refresh token")
    row.used_at = now
    new_token = tokens.new_opaque()
    session.add(RefreshToken(session_id=auth.id, token_hash=tokens.digest(new_token), created_at=now,
                             expires_at=auth.expires_at))
    auth.last_seen_at = now
    session.flush()
    return issue_tokens(settings, keyring, auth, new_token)


def revoke_session(session: Session, session_id: uuid.UUID, *, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason),
        execution_options={"synchronize_session": "fetch"},
    )


def revoke_all_sessions(
    session: Session, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
) -> None:
    """End every session of a user (disable, password change), optionally keeping the current one."""
    q = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        q = q.where(AuthSession.id != keep)
    session.execute(q.values(revoked_at=utcnow(), revoked_reason=reason), execution_options={"synchronize_session": "fetch"})


# -- resolving the actor of a request -------------------------------------------------------


def actor_from_access_token(session: Session, *, settings: Settings, keyring: Keyring, token: str) -> Actor:
    try:
        claims = tokens.decode_access(keyring.token_key, token, issuer=settings.token_issuer,
                                      audience=settings.token_audience)
    except tokens.InvalidToken as exc:
        raise NotAuthenticated("Invalid or expired token") from exc
    auth = session.get(AuthSession, claims.session_id)
    if auth is None or auth.kind != "api" or auth.user_id != claims.user_id:
        raise NotAuthenticated("Invalid or expired token")
    return _actor_for(session, settings, auth)


def actor_from_cookie(session: Session, *, settings: Settings, cookie: str) -> Actor:
    auth = session.scalars(select(AuthSession).where(AuthSession.token_hash == tokens.digest(cookie))).first()
    if auth is None or auth.kind != "web":
        raise NotAuthenticated()
    now = utcnow()
    if auth.revoked_at is None and now - auth.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        # Shared tablets: an idle session is ended, not merely hidden.
        revoke_session(session, auth.id, reason="idle")
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


# -- TOTP enrolment ---------------------------------------------------------------------------


def _totp_secret(keyring: Keyring, user: User) -> str:
    if user.totp_secret is None:
        raise InvalidCredentials()
    return keyring.open_secret(user.totp_secret, aad="user_account.totp_secret", binding=str(user.id)).decode()


def begin_totp_enrolment(session: Session, *, keyring: Keyring, user_id: uuid.UUID) -> tuple[str, str]:
    """Store a new (not yet enabled) secret; returns (secret, otpauth URI) for the authenticator app."""
    user = session.get(User, user_id)
    assert user is not None
    if user.totp_enabled:
        raise Forbidden("Two-factor authentication is already enabled")
    secret = totp.new_secret()
    user.totp_secret = keyring.seal_secret(aad="user_account.totp_secret", binding=str(user.id),
                                           payload=secret.encode())
    user.totp_last_step = None
    session.flush()
    return secret, totp.provisioning_uri(secret, user.email)


def confirm_totp_enrolment(session: Session, *, keyring: Keyring, user_id: uuid.UUID, code: str) -> None:
    user = session.get(User, user_id)
    assert user is not None
    if user.totp_secret is None or user.totp_enabled:
        raise Forbidden("No enrolment in progress")
    step = totp.accept(_totp_secret(keyring, user), code, None)
    if step is None:
        raise InvalidInput(fields=[_otp_problem()])
    user.totp_enabled, user.totp_last_step = True, step
    session.flush()


def disable_totp(session: Session, *, user: User) -> None:
    """Remove a user's second factor (self with re-auth, or an org admin's 2FA reset)."""
    user.totp_enabled, user.totp_secret, user.totp_last_step = False, None, None
    session.flush()


def _otp_problem() -> FieldProblem:
    return FieldProblem("/code", "確認コードが正しくありません", "The code is incorrect")
