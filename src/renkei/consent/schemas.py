"""Consent request/response models. Cross-field rules live in the service so pages and API share them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from renkei.consent.models import Category, ConsentMethod, ConsentScope, GivenBy
from renkei.web.schemas import ResponseModel, StrictModel


class Reauth(StrictModel):
    """Consent changes need the password again (and the one-time code if enrolled)."""

    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=10)


class ConsentCreate(Reauth):
    given_by: GivenBy = Field(description="同意者: patient 本人 | proxy 代理人")
    proxy_name: str | None = Field(default=None, max_length=100, description="代理人の氏名")
    proxy_relationship: str | None = Field(default=None, max_length=50, description="代理人の続柄")
    method: ConsentMethod = Field(description="written 書面 | verbal 口頭 | tablet_signature タブレット署名")
    scope: ConsentScope = Field(description="blanket 一括同意 | individual 個別同意")
    organisation_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=200,
        description="blanket: 除外する事業所 / individual: 共有先の事業所",
    )
    excluded_categories: list[Category] = Field(default_factory=list, max_length=len(Category))
    obtained_on: date = Field(description="同意を得た日")
    valid_from: date | None = Field(default=None, description="有効開始日（省略時は同意日）")
    valid_until: date | None = Field(default=None, description="有効期限（省略時は撤回まで）")
    note: str | None = Field(default=None, max_length=2000)


class WithdrawIn(Reauth):
    withdrawn_on: date | None = Field(default=None, description="撤回の申し出日（省略時は今日）")
    reason: str = Field(min_length=1, max_length=1000, description="撤回の理由")


class OrganisationRef(ResponseModel):
    id: uuid.UUID
    name: str


class DocumentOut(ResponseModel):
    id: uuid.UUID
    consent_id: uuid.UUID
    content_type: str
    size: int
    uploaded_by: uuid.UUID
    uploaded_at: datetime


class ConsentOut(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    version: int
    status: str  # active | withdrawn | superseded | expired | not_yet_valid
    # A written consent whose signed paper has not been scanned yet (署名済み同意書の取込み待ち).
    awaiting_scan: bool
    given_by: str
    proxy_name: str | None
    proxy_relationship: str | None
    method: str
    scope: str
    organisations: list[OrganisationRef]
    excluded_categories: list[str]
    obtained_on: date
    valid_from: date
    valid_until: date | None
    note: str | None
    recorded_by: uuid.UUID
    recorded_by_name: str
    recorded_organisation: str
    recorded_at: datetime
    superseded_at: datetime | None
    withdrawn_at: datetime | None
    withdrawn_on: date | None
    withdrawn_by: uuid.UUID | None
    withdrawal_reason: str | None
    documents: list[DocumentOut]
