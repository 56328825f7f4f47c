"""Inbox and websocket-ticket response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from renkei.web.schemas import ResponseModel, StrictModel


class NotificationOut(ResponseModel):
    id: uuid.UUID
    kind: str
    patient_id: uuid.UUID | None
    refs: dict[str, str]
    urgent: bool
    created_at: datetime
    read_at: datetime | None


class TicketOut(ResponseModel):
    ticket: str = Field(description="Single-use; send it as the first websocket message within its lifetime")
    expires_in: int = Field(description="Seconds until the ticket expires")


class SocketAuthIn(StrictModel):
    """The first websocket message: the ticket, and the last seq the client has seen (if any)."""

    type: Literal["auth"]
    ticket: str = Field(min_length=16, max_length=128)
    resume_after: int | None = Field(default=None, ge=0, le=2**63 - 1)
