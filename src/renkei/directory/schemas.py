"""Directory request/response models."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from renkei.directory.models import OrgKind, Profession, Role
from renkei.web.schemas import ResponseModel, StrictModel


class OrganisationIn(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind
    phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+()\- ]*$")


class OrganisationOut(ResponseModel):
    id: uuid.UUID
    name: str
    kind: str
    phone: str | None
    active: bool


class StaffIn(StrictModel):
    email: EmailStr = Field(max_length=254)
    name: str = Field(min_length=1, max_length=100)
    name_kana: str | None = Field(default=None, max_length=100)
    profession: Profession
    role: Role = Role.member
    password: str = Field(min_length=1, max_length=1024, description="Initial password (policy applies)")


class StaffPatch(StrictModel):
    email: EmailStr | None = Field(default=None, max_length=254)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    name_kana: str | None = Field(default=None, max_length=100)
    profession: Profession | None = None
    role: Role | None = None


class StaffOut(ResponseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    email: str
    name: str
    name_kana: str | None
    profession: str
    role: str
    active: bool
    totp_enabled: bool
    created_at: datetime
    disabled_at: datetime | None
