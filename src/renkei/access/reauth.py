"""Re-authentication for break-the-glass and consent changes: the password again (and TOTP if enrolled)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from renkei.access.exceptions import ReauthenticationFailed
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth import service as auth_service
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.errors import NotAuthenticated, OtpRequired, TooManyAttempts


def reauthenticate(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, password: str, otp: str | None,
    action: Action, patient_id: uuid.UUID | None,
) -> None:
    """Check the password (and TOTP if enrolled) again; failures are audited (the auth service throttles)."""
    try:
        auth_service.reauthenticate(session, settings=settings, keyring=keyring, user_id=actor.user_id,
                                    password=password, otp=otp)
    except TooManyAttempts:
        audit.record(session, actor=actor, action=action.value, allowed=False, reason="reauth_throttled",
                     patient_id=patient_id)
        raise
    except NotAuthenticated as exc:
        audit.record(session, actor=actor, action=action.value, allowed=False, reason="reauth_failed",
                     patient_id=patient_id)
        raise ReauthenticationFailed(otp=isinstance(exc, OtpRequired)) from exc
