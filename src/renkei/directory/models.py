"""Directory tables: organisations and the professionals who sign in."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, String
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class OrgKind(StrEnum):
    hospital = "hospital"
    home_care_clinic = "home_care_clinic"
    clinic = "clinic"
    dental_clinic = "dental_clinic"
    pharmacy = "pharmacy"
    visiting_nurse_station = "visiting_nurse_station"
    care_management_office = "care_management_office"
    community_support_centre = "community_support_centre"
    care_service_provider = "care_service_provider"
    municipality = "municipality"


class Profession(StrEnum):
    physician = "physician"
    dentist = "dentist"
    nurse = "nurse"
    pharmacist = "pharmacist"
    care_manager = "care_manager"
    msw = "msw"
    therapist = "therapist"
    care_worker = "care_worker"
    dietitian = "dietitian"
    coordinator = "coordinator"


class Role(StrEnum):
    member = "member"
    org_admin = "org_admin"
    region_admin = "region_admin"


class Organisation(SQLModel, table=True):
    __tablename__ = "organisation"

    id: uuid.UUID = id_field()
    name: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    phone: str | None = Field(default=None, sa_column=Column(String(30)))
    active: bool = True
    created_at: datetime = created_at_field()


class User(SQLModel, table=True):
    """A professional who signs in. Staff details are not PHI and are stored in clear."""

    __tablename__ = "user_account"

    id: uuid.UUID = id_field()
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    email: str = Field(sa_column=Column(String(254), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    name_kana: str | None = Field(default=None, sa_column=Column(String(100)))
    profession: str = Field(sa_column=Column(String(30), nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    active: bool = True
    totp_secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    totp_enabled: bool = False
    totp_last_step: int | None = None
    # A one-time code an administrator handed over in person: where two-factor sign-in is required, enrolling
    # an authenticator takes it as well as the password (keyed digest; the code itself is never stored).
    totp_enrolment_digest: str | None = Field(default=None, sa_column=Column(String(64)))
    totp_enrolment_expires_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    disabled_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
