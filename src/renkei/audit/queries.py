"""Reading the audit log: a patient's trail, the administrators' search, and whether an actor did
something lately (break-the-glass needs a recent lookup)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.audit.models import AuditEvent
from renkei.audit.service import ALLOW, record
from renkei.directory.models import Organisation, User
from renkei.errors import Forbidden

if TYPE_CHECKING:
    from renkei.auth.service import Actor


def _entry(row: AuditEvent, user: User | None, org: Organisation | None) -> dict[str, Any]:
    return {
        "seq": row.seq, "occurred_at": row.occurred_at, "actor_user_id": row.actor_user_id,
        "actor_name": user.name if user else None, "organisation_id": row.organisation_id,
        "organisation_name": org.name if org else None, "profession": row.profession, "role": row.role,
        "action": row.action, "event": row.event, "patient_id": row.patient_id,
        "target_ids": json.loads(row.target_ids),
        "categories": row.categories.split(",") if row.categories else [],
        "sheet_ids": row.sheet_ids.split(",") if row.sheet_ids else [], "decision": row.decision,
        "reason": row.reason, "consent_id": row.consent_id, "grant_id": row.grant_id,
        "request_id": row.request_id, "client_addr": row.client_addr,
    }


def search(
    session: Session, *, patient_id: uuid.UUID | None = None, actor_user_id: uuid.UUID | None = None,
    action: str | None = None, decision: str | None = None, since: datetime | None = None,
    until: datetime | None = None, organisation_id: uuid.UUID | None = None,
    grant_id: uuid.UUID | None = None, before_seq: int | None = None, limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first, with the actor's name and organisation (staff data, not PHI)."""
    q = (
        select(AuditEvent, User, Organisation)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .outerjoin(Organisation, Organisation.id == AuditEvent.organisation_id)
    )
    filters = {AuditEvent.patient_id: patient_id, AuditEvent.actor_user_id: actor_user_id,
               AuditEvent.organisation_id: organisation_id, AuditEvent.grant_id: grant_id,
               AuditEvent.action: action or None, AuditEvent.decision: decision or None}
    for column, value in filters.items():
        if value is not None:
            q = q.where(column == value)
    if since is not None:
        q = q.where(AuditEvent.occurred_at >= since)
    if until is not None:
        q = q.where(AuditEvent.occurred_at < until)
    if before_seq is not None:
        q = q.where(AuditEvent.seq < before_seq)
    rows = session.execute(q.order_by(AuditEvent.seq.desc()).limit(limit)).all()
    return [_entry(row, user, org) for row, user, org in rows]


def has_recent(
    session: Session, *, actor_user_id: uuid.UUID, action: str, patient_id: uuid.UUID, since: datetime,
) -> bool:
    """Whether the actor's committed log has an allowed `action` on this patient since a time."""
    return session.scalar(
        select(AuditEvent.seq).where(
            AuditEvent.actor_user_id == actor_user_id, AuditEvent.patient_id == patient_id,
            AuditEvent.action == action, AuditEvent.decision == ALLOW, AuditEvent.occurred_at >= since,
        ).limit(1)
    ) is not None


def admin_search(
    session: Session, *, actor: Actor, patient_id: uuid.UUID | None = None,
    actor_user_id: uuid.UUID | None = None, actor_email: str | None = None, action: str | None = None,
    decision: str | None = None, since: datetime | None = None, until: datetime | None = None,
    grant_id: uuid.UUID | None = None, before_seq: int | None = None, limit: int = 100,
) -> list[dict[str, Any]]:
    """Region administrators search the whole log; an organisation administrator the actions of their own
    organisation's staff (anyone else's are not found). The search is itself audited."""
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    own_staff = None if actor.is_region_admin else actor.organisation_id
    if actor_email:
        found = session.scalar(select(User.id).where(User.email == actor_email.strip().lower()))
        if found is None or (actor_user_id is not None and found != actor_user_id):
            return []
        actor_user_id = found
    record(session, actor=actor, action="audit_search", allowed=True,
           reason="region_admin" if own_staff is None else "org_admin", patient_id=patient_id,
           grant_id=grant_id, targets=[actor_user_id] if actor_user_id else ())
    return search(session, patient_id=patient_id, actor_user_id=actor_user_id, action=action,
                  decision=decision, since=_utc(since), until=_utc(until), organisation_id=own_staff,
                  grant_id=grant_id, before_seq=before_seq, limit=limit)



def _utc(value: datetime | None) -> datetime | None:
    # Query strings often omit the offset; read those as UTC, the time zone of the log itself.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
