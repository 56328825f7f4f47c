"""Audit search response model (ids, codes and staff names; never patient data)."""

from __future__ import annotations

import uuid
from datetime import datetime

from renkei.web.schemas import ResponseModel


class AuditEventOut(ResponseModel):
    seq: int
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_name: str | None
    organisation_id: uuid.UUID | None
    organisation_name: str | None
    profession: str | None
    role: str | None
    action: str
    event: str | None
    patient_id: uuid.UUID | None
    target_ids: list[str]
    categories: list[str]
    sheet_ids: list[str]
    decision: str
    reason: str
    consent_id: uuid.UUID | None
    grant_id: uuid.UUID | None
    request_id: str | None
    client_addr: str | None
