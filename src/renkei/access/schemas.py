"""Break-the-glass and access-log request/response models."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, field_validator

from renkei.access.models import BreakGlassReason, Disposition
from renkei.web.schemas import ResponseModel, StrictModel


class BreakGlassIn(StrictModel):
    reason_code: BreakGlassReason
    reason: str = Field(min_length=1, max_length=1000, description="状況の説明（自由記述）")
    password: str = Field(min_length=1, max_length=1024, description="本人確認のためのパスワード再入力")
    otp: str | None = Field(default=None, max_length=10)
    confirm: bool = Field(description="救急対応のために必要であることの確認（true が必要）")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a reason is required")
        return v.strip()


class GrantOut(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    organisation_id: uuid.UUID
    organisation_name: str
    profession: str
    reason_code: str
    reason: str | None
    scope: list[str]
    granted_at: datetime
    expires_at: datetime
    active: bool
    reviewed_at: datetime | None
    reviewed_by: uuid.UUID | None
    reviewer_name: str | None
    disposition: str | None
    review_note: str | None
    revoked_at: datetime | None = None
    revoked_by: uuid.UUID | None = None
    # Why no consent was in force when access was granted (consent_withdrawn, consent_expired, no_consent...).
    consent_state: str | None = None


class ReviewIn(StrictModel):
    disposition: Disposition
    note: str | None = Field(default=None, max_length=1000)


class AccessLogEntry(ResponseModel):
    """One line of a patient's access log: who, when, what, and on what grounds."""

    seq: int
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_name: str | None
    organisation_name: str | None
    profession: str | None
    action: str
    event: str | None
    decision: str
    reason: str
    consent_id: uuid.UUID | None
    grant_id: uuid.UUID | None
    target_ids: list[str]
    categories: list[str]
