"""The audit log: append-only (database triggers) and HMAC-chained. Ids and codes only, never PHI."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from renkei.db.base import utc_column


class AuditEvent(SQLModel, table=True):
    """mac = HMAC(audit key, canonical(row) || previous mac). No foreign keys: the log outlives everything."""

    __tablename__ = "audit_event"
    # Also enforced by triggers (migration 0008a): rows are appended with seq = max(seq) + 1 only.
    __table_args__ = (
        CheckConstraint("seq > 0", name="ck_audit_event_seq_positive"),
        Index("ix_audit_event_patient_seq", "patient_id", "seq"),
        Index("ix_audit_event_actor_seq", "actor_user_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    occurred_at: datetime = Field(sa_column=utc_column(index=True))
    request_id: str | None = Field(default=None, sa_column=Column(String(32)))
    actor_user_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    profession: str | None = Field(default=None, sa_column=Column(String(30)))
    role: str | None = Field(default=None, sa_column=Column(String(20)))
    action: str = Field(sa_column=Column(String(40), nullable=False))
    event: str | None = Field(default=None, sa_column=Column(String(40)))
    patient_id: uuid.UUID | None = None
    target_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    categories: str | None = Field(default=None, sa_column=Column(String(200)))
    sheet_ids: str | None = Field(default=None, sa_column=Column(String(400)))
    decision: str = Field(sa_column=Column(String(5), nullable=False))
    reason: str = Field(sa_column=Column(String(40), nullable=False))
    consent_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    client_addr: str | None = Field(default=None, sa_column=Column(String(64)))
    mac: str = Field(sa_column=Column(String(64), nullable=False))
