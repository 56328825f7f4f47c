"""Two-factor enrolment: start (a new secret, shown once), confirm with the first code, and the one-time
enrolment codes an administrator hands over where two-factor sign-in is required."""

from __future__ import annotations

import hmac
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from renkei.auth import service, throttle, totp
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import after_rollback
from renkei.db.types import utcnow
from renkei.directory.models import User
from renkei.errors import FieldProblem, Forbidden, InvalidInput


@dataclass(frozen=True)
class TotpStatus:
    enabled: bool
    needs_code: bool  # enrolling takes an enrolment code from an administrator


# Long enough to hand the code over in person across a weekend; an admin can issue a new one at any time.
ENROLMENT_CODE_LIFETIME = timedelta(hours=72)


@dataclass(frozen=True)
class EnrolmentCode:
    code: str
    expires_at: datetime


def enrolment_code_needed(settings: Settings, user: User) -> bool:
    """Where two-factor sign-in is required, the password alone must not be enough to enrol an authenticator:
    whoever enrolled first would hold the account for good. Where it is optional, the password already opens
    everything, and the owner may enrol with it alone."""
    return service.totp_required(settings, user) and not user.totp_enabled


def _enrolment_digest(keyring: Keyring, user_id: uuid.UUID, code: str) -> str:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", code) if ch.isdigit())
    return keyring.blind_index("totp-enrolment", f"{user_id}|{digits}")


def issue_enrolment_code(
    session: Session, *, keyring: Keyring, user: User, code: str | None = None,
    lifetime: timedelta = ENROLMENT_CODE_LIFETIME,
) -> EnrolmentCode:
    """A one-time enrolment code (replacing any earlier one), shown once to the administrator who hands it
    over in person. Only the demo region passes a `code` of its own."""
    digits = f"{secrets.randbelow(10 ** 8):08d}" if code is None else code.replace("-", "")
    user.totp_enrolment_digest = _enrolment_digest(keyring, user.id, digits)
    user.totp_enrolment_expires_at = utcnow() + lifetime
    session.flush()
    return EnrolmentCode(f"{digits[:4]}-{digits[4:]}", user.totp_enrolment_expires_at)


def _check_enrolment_code(
    session: Session, settings: Settings, keyring: Keyring, user: User, code: str | None,
) -> None:
    """Like a password: throttled per account, and every wrong code counts towards the lockout."""
    now = utcnow()
    account_key = throttle.account_key(keyring, user.email)
    throttle.check(session, settings, now, account_key=account_key)
    if not code or not code.strip():
        raise InvalidInput(fields=[FieldProblem(
            "/enrolment_code", "管理者から渡された登録コードを入力してください",
            "Enter the enrolment code your administrator gave you")])
    expected = user.totp_enrolment_digest
    valid = (expected is not None and user.totp_enrolment_expires_at is not None
             and user.totp_enrolment_expires_at > now)
    if not (valid and hmac.compare_digest(expected or "", _enrolment_digest(keyring, user.id, code))):
        after_rollback(session, lambda s: throttle.record_failure(s, settings, now, account_key=account_key))
        raise InvalidInput(fields=[FieldProblem(
            "/enrolment_code", "登録コードが正しくないか、有効期限が切れています。管理者に新しいコードを発行してもらってください",
            "The enrolment code is wrong or has expired; ask your administrator for a new one")])


def begin_totp_enrolment(
    session: Session, *, settings: Settings, keyring: Keyring, user_id: uuid.UUID, enrolment_code: str | None,
) -> tuple[str, str]:
    """Store a new (not yet enabled) secret; returns (secret, otpauth URI) for the authenticator app.

    The secret is shown only in this answer: each start makes a new one, so nobody sees a secret someone else
    began with."""
    user = session.get(User, user_id)
    assert user is not None
    if user.totp_enabled:
        raise Forbidden("Two-factor authentication is already enabled")
    if enrolment_code_needed(settings, user):
        _check_enrolment_code(session, settings, keyring, user, enrolment_code)
    secret = totp.new_secret()
    user.totp_secret = keyring.seal_secret(aad="user_account.totp_secret", binding=str(user.id),
                                           payload=secret.encode())
    user.totp_last_step = None
    session.flush()
    return secret, totp.provisioning_uri(secret, user.email)


def totp_status(session: Session, *, settings: Settings, user_id: uuid.UUID) -> TotpStatus:
    """What the setup page shows before anything is started; reads only."""
    user = session.get(User, user_id)
    assert user is not None
    return TotpStatus(enabled=user.totp_enabled, needs_code=enrolment_code_needed(settings, user))


def confirm_totp_enrolment(session: Session, *, keyring: Keyring, user_id: uuid.UUID, code: str) -> None:
    """Turn two-factor sign-in on with the authenticator's first code; the enrolment code is spent."""
    user = session.get(User, user_id)
    assert user is not None
    if user.totp_secret is None or user.totp_enabled:
        raise Forbidden("No enrolment in progress")
    step = totp.accept(service.totp_secret(keyring, user), code, None)
    if step is None:
        raise InvalidInput(fields=[service.otp_problem()])
    user.totp_enabled, user.totp_last_step = True, step
    user.totp_enrolment_digest = user.totp_enrolment_expires_at = None
    session.flush()
