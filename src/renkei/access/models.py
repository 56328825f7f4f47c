"""Break-the-glass grants: time-limited, read-only emergency access for someone outside the care team."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from renkei.db.base import id_field, utc_column


class BreakGlassReason(StrEnum):
    emergency_transport = "emergency_transport"  # 救急搬送
    sudden_deterioration = "sudden_deterioration"  # 急変対応
    unconscious = "unconscious"  # 意識障害・本人確認困難
    disaster = "disaster"  # 災害時
    other = "other"


class Disposition(StrEnum):
    appropriate = "appropriate"  # 適切
    inappropriate = "inappropriate"  # 不適切
    needs_follow_up = "needs_follow_up"  # 要確認


class BreakGlassGrant(SQLModel, table=True):
    """One emergency grant. The free-text reason and review note may name the patient: sealed."""

    __tablename__ = "break_glass_grant"
    __table_args__ = (
        Index("ix_break_glass_user_patient", "user_id", "patient_id", "expires_at"),
        Index("ix_break_glass_org_reviewed", "organisation_id", "reviewed_at"),
    )

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    profession: str = Field(sa_column=Column(String(30), nullable=False))
    reason_code: str = Field(sa_column=Column(String(30), nullable=False))
    reason_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    granted_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    reviewed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    reviewed_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    disposition: str | None = Field(default=None, sa_column=Column(String(30)))
    review_note_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # An inappropriate review or an administrator ends a grant early: expires_at is brought forward to
    # that moment (so every check of expires_at stops it at once) and these say who did it.
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    # Why no consent was in force when the grant was made (e.g. "consent_withdrawn"); None when one was.
    # Emergency access does not depend on consent (APPI art. 27(1)(ii)), but reviewers must see it.
    consent_state: str | None = Field(default=None, sa_column=Column(String(30)))
