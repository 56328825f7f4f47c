"""Inbox response models."""

from __future__ import annotations

import uuid
from datetime import datetime

from renkei.web.schemas import ResponseModel


class NotificationOut(ResponseModel):
    id: uuid.UUID
    kind: str
    patient_id: uuid.UUID | None
    refs: dict[str, str]
    urgent: bool
    created_at: datetime
    read_at: datetime | None
