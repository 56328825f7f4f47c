"""The inbox: one row per recipient. Ids and a kind only; the client fetches content through the API."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_read", "user_id", "read_at", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id")
    refs: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object of ids
    urgent: bool = False
    created_at: datetime = created_at_field()
    read_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
