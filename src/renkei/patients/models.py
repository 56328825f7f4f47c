"""Patient tables. Identity lives only in `identity_ct`, encrypted with the patient's data key."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, String, text
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class TeamRole(StrEnum):
    attending_physician = "attending_physician"
    physician = "physician"
    visiting_nurse = "visiting_nurse"
    pharmacist = "pharmacist"
    care_manager = "care_manager"
    discharge_coordinator = "discharge_coordinator"
    therapist = "therapist"
    care_worker = "care_worker"
    dentist = "dentist"
    dietitian = "dietitian"
    community_support = "community_support"
    other = "other"


class Patient(SQLModel, table=True):
    __tablename__ = "patient"

    id: uuid.UUID = id_field()
    identity_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class PatientKey(SQLModel, table=True):
    """The patient's data key, wrapped by a KEK. Deleting the row crypto-shreds the patient."""

    __tablename__ = "patient_key"
    # At most one active key per patient: what is sealed now and the key a page of entries carries are the
    # same key, whichever row a `LIMIT 1` would otherwise have found first.
    __table_args__ = (Index("ux_patient_key_one_active", "patient_id", unique=True,
                            sqlite_where=text("active"), postgresql_where=text("active")),)

    key_id: str = Field(sa_column=Column(String(40), primary_key=True))
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    kek_id: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    active: bool = True
    created_at: datetime = created_at_field()


class PatientIndex(SQLModel, table=True):
    """HMAC blind index rows for exact lookup; the digest reveals nothing without the index key."""

    __tablename__ = "patient_index"
    __table_args__ = (Index("ix_patient_index_kind_digest", "kind", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    digest: str = Field(sa_column=Column(String(64), nullable=False))


class CareTeamMembership(SQLModel, table=True):
    """A professional's place on a patient's care team; ended, never deleted."""

    __tablename__ = "care_team_membership"
    __table_args__ = (Index("ix_membership_user_active", "user_id", "ended_at"),)

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    team_role: str = Field(sa_column=Column(String(30), nullable=False))
    start_date: date
    end_date: date | None = None
    added_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    ended_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    ended_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    end_reason: str | None = Field(default=None, sa_column=Column(String(200)))
