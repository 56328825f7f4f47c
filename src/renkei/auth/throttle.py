"""Throttling: per-account lockout and per-address limits for sign-in; counted uses of rate-limited actions.

Counters are keyed by a keyed digest of the email or client address, never the value itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from renkei.auth.models import LoginThrottle
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.errors import TooManyAttempts

# An account's failures are remembered for a day so that each further run of failures locks it for longer.
ACCOUNT_MEMORY = timedelta(days=1)
MAX_LOCKOUT = timedelta(days=1)


def account_key(keyring: Keyring, email: str) -> str:
    # Keyed digests: the table never holds an email address or client address in clear. Unknown addresses get
    # a counter too, so a lockout tells nothing about whether an account exists.
    return "acct:" + keyring.blind_index("login-email", email.strip().lower())[:40]


def ip_key(keyring: Keyring, client_ip: str) -> str:
    return "ip:" + keyring.blind_index("login-ip", client_ip)[:40]


def _retry_after(until: datetime, now: datetime) -> dict[str, str]:
    return {"Retry-After": str(int((until - now).total_seconds()) + 1)}


def check(
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


def record_failure(
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
    memory = max(ACCOUNT_MEMORY, timedelta(minutes=settings.login_ip_window_minutes))
    expire_throttles(session, now, older_than=memory, keep=keys)


# Each failed sign-in with a made-up email leaves a counter behind; each failure also removes up to this many
# counters that have become meaningless, so the table stays as small as the recent failures.
EXPIRE_BATCH = 100


def expire_throttles(
    session: Session, now: datetime, *, older_than: timedelta, keep: Sequence[str] = (),
) -> int:
    """Delete counters whose window began more than `older_than` ago and that lock nothing: they count as
    zero already. Rows another transaction holds are skipped, never waited for (no deadlock with it)."""
    stale = list(session.scalars(
        select(LoginThrottle.key)
        .where(LoginThrottle.window_start < now - older_than,
               or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
               LoginThrottle.key.not_in(list(keep)))
        .limit(EXPIRE_BATCH).with_for_update(skip_locked=True)
    ))
    if stale:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(stale)),
                        execution_options={"synchronize_session": False})
    return len(stale)


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


def clear_account_failures(session: Session, account_key: str, now: datetime) -> None:
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
    expire_throttles(session, now, older_than=max(window, ACCOUNT_MEMORY), keep=keys)
    if blocked_until is not None:
        raise TooManyAttempts(headers=_retry_after(blocked_until, now))
