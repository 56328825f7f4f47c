"""Sign-in, sessions, refresh-token rotation, throttling and TOTP enrolment."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import NoReturn
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from renkei.auth import passwords, tokens, totp
from renkei.audit import service as audit
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
class TotpSetup:
    enabled: bool
    secret: str | None = None
    otpauth_uri: str | None = None


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


# -- throttling ----------------------------------------------------------------------------

# An account's failures are remembered for a day so that each further run of failures locks it for longer.
ACCOUNT_MEMORY = timedelta(days=1)
SIGN_IN = "auth.sign_in"  # audit event of every sign-in attempt (ids and codes; never the email or password)
MAX_LOCKOUT = timedelta(days=1)


def _account_key(keyring: Keyring, email: str) -> str:
    # Keyed digests: the table never holds an email address or client address in clear. Unknown addresses get
    # a counter too, so a lockout tells nothing about whether an account exists.
    return "acct:" + keyring.blind_index("login-email", email.strip().lower())[:40]


def _ip_key(keyring: Keyring, client_ip: str) -> str:
    return "ip:" + keyring.blind_index("login-ip", client_ip)[:40]


def _retry_after(until: datetime, now: datetime) -> dict[str, str]:
    return {"Retry-After": str(int((until - now).total_seconds()) + 1)}


def _check_throttle(
    session: Session, settings: Settings, now: datetime, *, account_key: str, ip_key: str | None = None
) -> None:
    keys = [account_key] if ip_key is None else [account_key, ip_key]
    rows = {r.key: r for r in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))}
    acct = rows.get(account_key)
    if acct and acct.locked_until and acct.locked_until > now:
        raise TooManyAttempts(headers=_retry_after(acct.locked_until, now))
    ip = rows.get(ip_key) if ip_key else None
    window_end = ip.window_start + timedelta(minutes=settings.login_ip_window_minutes) if ip else now
    if ip and window_end > now and ip.failures >= settings.login_ip_max_attempts:
        raise TooManyAttempts(headers=_retry_after(window_end, now))


def _record_failure(
    session: Session, settings: Settings, now: datetime, *, account_key: str, ip_key: str | None = None
) -> None:
    """Count a failed attempt; runs after the request's rollback, maybe concurrently with other attempts."""
    keys = sorted([account_key] if ip_key is None else [account_key, ip_key])
    for key in keys:
        _ensure_throttle_row(session, key, now)
    # Row locks (PostgreSQL; SQLite serialises writers already) so that parallel guesses cannot lose counts.
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys)).order_by(LoginThrottle.key)
        .with_for_update().execution_options(populate_existing=True)
    )
    for row in rows:
        if row.key == account_key:
            _count_account_failure(settings, row, now)
        else:
            _count_ip_failure(settings, row, now)
    session.flush()


def _ensure_throttle_row(session: Session, key: str, now: datetime) -> None:
    if session.get(LoginThrottle, key) is not None:
        return
    try:
        with session.begin_nested():
            session.add(LoginThrottle(key=key, failures=0, window_start=now))
    except IntegrityError:
        pass  # a concurrent attempt created it first


def _count_account_failure(settings: Settings, row: LoginThrottle, now: datetime) -> None:
    locked = row.locked_until is not None and row.locked_until > now
    if not locked and row.window_start + ACCOUNT_MEMORY <= now:
        row.failures, row.window_start, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures % settings.login_max_failures == 0:
        # Every further run of failures doubles the lockout, capped at a day.
        strikes = min(row.failures // settings.login_max_failures, 20)
        lockout = timedelta(minutes=settings.login_lockout_minutes) * 2 ** (strikes - 1)
        row.locked_until = now + min(lockout, MAX_LOCKOUT)


def _count_ip_failure(settings: Settings, row: LoginThrottle, now: datetime) -> None:
    if row.window_start + timedelta(minutes=settings.login_ip_window_minutes) <= now:
        row.failures, row.window_start = 0, now
    row.failures += 1


def _clear_account_failures(session: Session, account_key: str, now: datetime) -> None:
    row = session.get(LoginThrottle, account_key)
    if row is not None:
        row.failures, row.window_start, row.locked_until = 0, now, None


def throttle_key(keyring: Keyring, kind: str, value: str) -> str:
    """A counter key for `count_use` that does not hold the value (a client address) in clear."""
    return f"{kind}:" + keyring.blind_index(f"throttle-{kind}", value)[:40]


def count_use(session: Session, *, limits: dict[str, int], window: timedelta) -> None:
    """Count one use of a rate-limited action under each key; 429 once a key has had its limit in the window.

    Every use counts, successful or not (an exact lookup that finds nobody is still one guess). The counters
    are locked while they are read so that parallel requests cannot all slip under the limit.
    """
    now = utcnow()
    keys = sorted(limits)
    for key in keys:
        _ensure_throttle_row(session, key, now)
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_(keys)).order_by(LoginThrottle.key)
        .with_for_update().execution_options(populate_existing=True)
    )
    blocked_until: datetime | None = None
    for row in rows:
        if row.window_start + window <= now:
            row.failures, row.window_start = 0, now
        if row.failures >= limits[row.key]:
            window_end = row.window_start + window
            blocked_until = max(blocked_until or window_end, window_end)
        row.failures += 1
    session.flush()
    if blocked_until is not None:
        raise TooManyAttempts(headers=_retry_after(blocked_until, now))


# -- sign-in -------------------------------------------------------------------------------


def authenticate(
    session: Session, *, settings: Settings, keyring: Keyring, email: str, password: str,
    otp: str | None, client_ip: str,
) -> User:
    """Check credentials (and TOTP); failures are counted even though the request fails."""
    now = utcnow()
    keys = {"account_key": _account_key(keyring, email), "ip_key": _ip_key(keyring, client_ip)}
    try:
        _check_throttle(session, settings, now, **keys)
    except TooManyAttempts:
        audit.record_account(session, actor=None, event=SIGN_IN, account=None, allowed=False,
                             reason="throttled")
        raise
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    ok, new_hash = passwords.verify(password, user.password_hash if user else None)
    if not ok or user is None or not user.active:
        after_rollback(session, lambda s: _record_failure(s, settings, now, **keys))
        reason = "unknown_account" if user is None else "wrong_password" if not ok else "account_disabled"
        audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False, reason=reason)
        raise InvalidCredentials()
    if user.totp_enabled:
        if not otp:
            audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False,
                                 reason="otp_required")
            raise OtpRequired()
        step = totp.accept(_totp_secret(keyring, user), otp, user.totp_last_step)
        if step is None or not _spend_totp_step(session, user, step):
            after_rollback(session, lambda s: _record_failure(s, settings, now, **keys))
            audit.record_account(session, actor=None, event=SIGN_IN, account=user, allowed=False,
                                 reason="wrong_otp")
            raise InvalidCredentials("The one-time code is incorrect or already used")
    if new_hash:
        user.password_hash = new_hash
    _clear_account_failures(session, keys["account_key"], now)
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
    account_key = _account_key(keyring, user.email)
    _check_throttle(session, settings, now, account_key=account_key)
    ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok:
        after_rollback(session, lambda s: _record_failure(s, settings, now, account_key=account_key))
        raise InvalidCredentials("The password is incorrect")
    if user.totp_enabled:
        step = totp.accept(_totp_secret(keyring, user), otp or "", user.totp_last_step)
        if step is None or not _spend_totp_step(session, user, step):
            if otp:
                after_rollback(session, lambda s: _record_failure(s, settings, now, account_key=account_key))
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


def actor_from_access_token(session: Session, *, settings: Settings, keyring: Keyring, token: str) -> Actor:
    """The actor of a bearer token; the sign-in session and the account are checked on every request."""
    try:
        claims = tokens.decode_access(keyring.token_key, token, issuer=settings.token_issuer,
                                      audience=settings.token_audience)
    except tokens.InvalidToken as exc:
        raise NotAuthenticated("Invalid or expired token") from exc
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


# -- TOTP enrolment ---------------------------------------------------------------------------


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


def _totp_secret(keyring: Keyring, user: User) -> str:
    if user.totp_secret is None:
        raise InvalidCredentials()
    sealed = keyring.open_secret(user.totp_secret, aad="user_account.totp_secret", binding=str(user.id))
    return sealed.decode()


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


def totp_setup(session: Session, *, keyring: Keyring, user_id: uuid.UUID) -> TotpSetup:
    """The setup page's state: enabled, or the pending secret (started if none, so a reload keeps it)."""
    user = session.get(User, user_id)
    assert user is not None
    if user.totp_enabled:
        return TotpSetup(enabled=True)
    if user.totp_secret is None:
        secret, uri = begin_totp_enrolment(session, keyring=keyring, user_id=user_id)
    else:
        secret = _totp_secret(keyring, user)
        uri = totp.provisioning_uri(secret, user.email)
    return TotpSetup(enabled=False, secret=secret, otpauth_uri=uri)


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
