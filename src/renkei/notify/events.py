"""Consent and break-the-glass events: an outbox event for live delivery and inbox rows for the people
it concerns, appended in the transaction of the change.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.notify import delivery, service
from renkei.notify.models import Audience
from renkei.notify.service import Kind


def consent_changed(
    session: Session, *, kind: Kind, patient_id: uuid.UUID, consent_id: uuid.UUID, actor: Actor,
) -> None:
    """A consent was recorded or withdrawn; a withdrawal reaches every member's inbox (they lose access)."""
    refs = {"consent_id": consent_id}
    service.queue(session, kind=kind, audience=Audience.team, patient_id=patient_id, refs=refs)
    if kind == Kind.consent_withdrawn:
        members = delivery.active_members(session, patient_id) - {actor.user_id}
        service.notify_users(session, user_ids=sorted(members), kind=kind, patient_id=patient_id, refs=refs)


def break_glass_used(
    session: Session, *, patient_id: uuid.UUID, grant_id: uuid.UUID, recipients: list[uuid.UUID],
) -> None:
    """Someone broke the glass: the team hears it live, and so do `recipients` off the team (org admins)."""
    refs = {"grant_id": grant_id}
    service.queue(session, kind=Kind.break_glass, audience=Audience.team, patient_id=patient_id, urgent=True,
                  refs=refs)
    team = delivery.active_members(session, patient_id)
    for uid in dict.fromkeys(recipients):
        if uid not in team:
            service.queue(session, kind=Kind.break_glass, audience=Audience.user, user_id=uid,
                          patient_id=patient_id, urgent=True, refs=refs)
    service.notify_users(session, user_ids=recipients, kind=Kind.break_glass, patient_id=patient_id,
                         refs=refs, urgent=True)
