"""Idempotency keys of retry-safe POSTs (timeline entries and attachments, consents, break-the-glass)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class IdempotencyKey(SQLModel, table=True):
    """A POST's `Idempotency-Key`, per user, with a fingerprint of the request and the sealed response."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_key_user_key"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    key: str = Field(sa_column=Column(String(200), nullable=False))
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    category: str | None = Field(default=None, sa_column=Column(String(20)))
    status_code: int | None = Field(default=None, sa_column=Column(Integer))
    response_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_column=utc_column(index=True))
