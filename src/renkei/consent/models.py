"""Consent tables. A consent is never edited: a change is a new version, a withdrawal is dated on the row."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class Category(StrEnum):
    """Data categories a consent can exclude: the `x-category` of every standard sheet, and of the parts of
    sheets that carry their own (ACP wishes on other sheets, psychiatric and behavioural notes)."""

    admission = "admission"
    discharge = "discharge"
    emergency = "emergency"
    acp = "acp"
    visit = "visit"
    care = "care"
    message = "message"
    psychiatric = "psychiatric"


CATEGORIES: frozenset[str] = frozenset(c.value for c in Category)
# Categories only parts of sheets carry, never a whole sheet: excluding every other category shares nothing.
PART_ONLY_CATEGORIES: frozenset[str] = frozenset({Category.psychiatric.value})


class GivenBy(StrEnum):
    patient = "patient"
    proxy = "proxy"


class ConsentMethod(StrEnum):
    written = "written"  # signed paper (scan attached)
    verbal = "verbal"  # recorded by the professional
    tablet_signature = "tablet_signature"


class ConsentScope(StrEnum):
    blanket = "blanket"  # 一括同意: every organisation on the care team, minus the listed ones
    individual = "individual"  # 個別同意: only the listed organisations


class Consent(SQLModel, table=True):
    """One version of a patient's consent to share. Proxy name and notes are sealed in `details_ct`."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("patient_id", "version", name="uq_consent_patient_version"),)

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    given_by: str = Field(sa_column=Column(String(20), nullable=False))
    method: str = Field(sa_column=Column(String(30), nullable=False))
    scope: str = Field(sa_column=Column(String(20), nullable=False))
    # Sorted, comma-separated category codes; empty means every category may be shared.
    excluded_categories: str = Field(default="", sa_column=Column(String(200), nullable=False))
    obtained_on: date
    valid_from: date
    valid_until: date | None = None
    details_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    recorded_by: uuid.UUID = Field(foreign_key="user_account.id")
    recorded_org_id: uuid.UUID = Field(foreign_key="organisation.id")
    recorded_at: datetime = created_at_field()
    superseded_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    superseded_by: uuid.UUID | None = Field(default=None, foreign_key="consent.id")
    withdrawn_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    withdrawn_on: date | None = None
    withdrawn_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    withdrawal_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class ConsentOrganisation(SQLModel, table=True):
    """An organisation named by a consent: excluded (blanket) or included (individual)."""

    __tablename__ = "consent_organisation"
    __table_args__ = (Index("ix_consent_organisation_org", "organisation_id"),)

    consent_id: uuid.UUID = Field(foreign_key="consent.id", primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", primary_key=True)


class ConsentDocument(SQLModel, table=True):
    """The scan of a signed consent form (or the tablet signature), encrypted with the patient's key."""

    __tablename__ = "consent_document"

    id: uuid.UUID = id_field()
    consent_id: uuid.UUID = Field(foreign_key="consent.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    content_type: str = Field(sa_column=Column(String(40), nullable=False))
    size: int
    data_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: uuid.UUID = Field(foreign_key="user_account.id")
    uploaded_at: datetime = created_at_field()
