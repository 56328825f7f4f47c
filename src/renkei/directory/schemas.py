"""Directory request/response models."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, EmailStr, Field, StringConstraints, field_validator

from renkei.directory.models import OrgKind, Profession, Role
from renkei.web.schemas import ResponseModel, StrictModel

# Hiragana, katakana (with ー and ・) and spaces, after NFKC has turned half-width kana into full-width.
_KANA = re.compile(r"^[\u3041-\u3096\u309D\u309E\u30A1-\u30FA\u30FB\u30FC\u30FD\u30FE ]+$")


def _normalise_kana(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(unicodedata.normalize("NFKC", value).split())
    if not value:
        return None
    if not _KANA.match(value):
        raise ValueError("must be written in kana")
    return value


def _normalise_email(value: str) -> str:
    # Addresses are unique case-insensitively: they are stored, compared and signed in with in lower case.
    return value.strip().lower()


PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Kana = Annotated[str | None, Field(default=None, max_length=100), AfterValidator(_normalise_kana)]
Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_normalise_email)]


class OrganisationIn(StrictModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    kind: OrgKind
    phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+()\- ]*$")


class OrganisationOut(ResponseModel):
    id: uuid.UUID
    name: str
    kind: str
    phone: str | None
    active: bool


class StaffIn(StrictModel):
    email: Email
    name: PersonName
    name_kana: Kana = None
    profession: Profession
    role: Role = Role.member
    password: str = Field(min_length=1, max_length=1024, description="Initial password (policy applies)")


class StaffPatch(StrictModel):
    """Only the fields sent are changed; `name_kana: null` clears the kana."""

    email: Email | None = None
    name: PersonName | None = None
    name_kana: Kana = None
    profession: Profession | None = None
    role: Role | None = None

    @field_validator("email", "name", "profession", "role", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Optional means "may be left out", not "may be erased": these columns always hold a value.
        if value is None:
            raise ValueError("must not be null")
        return value


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
    updated_at: datetime
    disabled_at: datetime | None


class StaffWithCodeOut(StaffOut):
    """A created or reset account with the one-time two-factor enrolment code, shown this once."""

    enrolment_code: str | None = Field(
        default=None, description="Hand over in person: needed to set up two-factor sign-in where required")
    enrolment_code_expires_at: datetime | None = None
