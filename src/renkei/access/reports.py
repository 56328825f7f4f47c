"""A patient's access log: the answer to a disclosure request (who viewed my record, when, why)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.schemas import AccessLogEntry
from renkei.access.service import Action
from renkei.audit import queries as audit_queries
from renkei.auth.service import Actor


def access_log(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, before_seq: int | None = None, limit: int = 100,
) -> list[AccessLogEntry]:
    """Who touched this patient's record, when, what they did and on what grounds (newest first)."""
    access.require(session, actor, Action.read_access_log, patient_id)
    rows = audit_queries.search(session, patient_id=patient_id, before_seq=before_seq, limit=limit)
    return [AccessLogEntry.model_validate(row) for row in rows]

