"""JSON API: the region administrator's audit search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from renkei.audit import queries
from renkei.audit.dependencies import AuditorDep
from renkei.audit.schemas import AuditEventOut
from renkei.db.session import SessionDep

router = APIRouter(tags=["audit"])


@router.get("/audit/events", response_model=list[AuditEventOut],
            summary="Search the audit log (region admin; org admin: own staff)")
def search(
    actor: AuditorDep, session: SessionDep,
    patient_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None,
    actor_email: Annotated[str | None, Query(max_length=254)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    decision: Literal["allow", "deny"] | None = None,
    since: datetime | None = None, until: datetime | None = None, grant_id: uuid.UUID | None = None,
    before_seq: Annotated[int | None, Query(ge=1)] = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """Newest first; filter by patient, actor (id or email), action, decision, time (`since` inclusive,
    `until` exclusive) and break-the-glass grant. An organisation administrator sees only the actions of
    their own organisation's staff."""
    return queries.admin_search(session, actor=actor, patient_id=patient_id, actor_user_id=actor_id,
                                actor_email=actor_email, action=action, decision=decision, since=since,
                                until=until, grant_id=grant_id, before_seq=before_seq, limit=limit)
