"""Patient and care-team request/response models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from renkei.crypto import blind_index
from renkei.db.types import today_jst
from renkei.errors import FieldProblem
from renkei.patients.models import TeamRole
from renkei.web.schemas import ResponseModel, StrictModel

TEL = r"^[0-9+()\- ]*$"


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class CareLevel(StrEnum):
    none = "none"
    support_1 = "support_1"
    support_2 = "support_2"
    care_1 = "care_1"
    care_2 = "care_2"
    care_3 = "care_3"
    care_4 = "care_4"
    care_5 = "care_5"
    applying = "applying"
    unknown = "unknown"


class PatientIdentity(StrictModel):
    """Everything identifying about a patient; stored only encrypted."""

    name: str = Field(min_length=1, max_length=100, description="氏名 (kanji)")
    name_kana: str = Field(min_length=1, max_length=100, description="氏名（カナ）")
    birth_date: date
    sex: Sex
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=30, pattern=TEL)
    care_insurance_number: str | None = Field(default=None, max_length=20, description="介護保険被保険者番号")
    health_insurance_number: str | None = Field(default=None, max_length=40, description="医療保険の番号")
    care_level: CareLevel | None = None
    care_level_valid_from: date | None = None
    care_level_valid_until: date | None = None

    @field_validator("birth_date")
    @classmethod
    def _birth_not_in_future(cls, v: date) -> date:
        if v > today_jst():
            raise PydanticCustomError("birth_date_in_future", "birth date cannot be in the future",
                                      {"ja": "生年月日に未来の日付は入力できません"})
        if v.year < 1890:
            raise PydanticCustomError("birth_date_too_early", "birth date is implausibly early (before 1890)",
                                      {"ja": "生年月日が古すぎます（1890年以降）"})
        return v

    @field_validator("care_level_valid_until")
    @classmethod
    def _validity_order(cls, v: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("care_level_valid_from")
        if v is not None and start is not None and v < start:
            raise PydanticCustomError("validity_order", "care level validity ends before it starts",
                                      {"ja": "有効期間の終わりが始まりより前になっています"})
        return v


class PatientCreate(PatientIdentity):
    team_role: TeamRole = Field(description="The registering professional's role on the new care team")


class PatientUpdate(PatientIdentity):
    pass


class PatientOut(ResponseModel):
    id: uuid.UUID
    identity: PatientIdentity
    age: int
    created_at: datetime
    my_team_role: str | None = Field(default=None, description="My role on the team (first of my_team_roles)")
    my_team_roles: list[str] = Field(default_factory=list, description="Every role I hold on this care team")
    unread_count: int = Field(default=0, description="Posted entries I may read and have not read")


# Shorter than any real care (10 digits) or health insurance number: a fragment, or a sweep's guess.
MIN_INSURANCE_CHARS = 6


class LookupIn(StrictModel):
    name_kana: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    insurance_number: str | None = Field(default=None, min_length=1, max_length=40,
                                         description="介護保険は10桁、医療保険は記号・番号（6文字以上）")

    def problems(self) -> list[FieldProblem]:
        """Kana name and birth date together, or a whole insurance number; each problem names its field."""
        if self.insurance_number is not None:
            extra = [f for f in ("name_kana", "birth_date") if getattr(self, f) is not None]
            problems = [FieldProblem(f"/{f}", "保険番号と同時には指定できません",
                                     "Give either insurance_number, or name_kana and birth_date, not both")
                        for f in extra]
            number = blind_index.normalise_number(self.insurance_number)
            if len(number) < MIN_INSURANCE_CHARS or not number.isalnum():
                problems.append(FieldProblem(
                    "/insurance_number", "保険番号は省略せずに入力してください（介護保険は10桁、医療保険は6文字以上）",
                    "Give the whole insurance number (care insurance: 10 digits; health insurance: 6 or more "
                    "letters and digits)"))
            return problems
        missing = [f for f in ("name_kana", "birth_date") if getattr(self, f) is None]
        if len(missing) == 2:
            return [FieldProblem("/insurance_number", "保険番号、またはカナ氏名と生年月日を指定してください",
                                 "Give insurance_number, or name_kana and birth_date")]
        return [FieldProblem(f"/{f}", "カナ氏名と生年月日は両方必要です（または保険番号）",
                             "name_kana and birth_date are needed together (or give insurance_number)")
                for f in missing]


class LookupResult(ResponseModel):
    """A match, with only what confirms identity and nothing the searcher did not type (no name, no birth
    date). Sex and age band are for physicians and nurses, who may break the glass; a registering
    professional's duplicate check gets the id and whether the patient is on their team."""

    id: uuid.UUID
    on_my_team: bool
    sex: str | None = None
    age_band: int | None = Field(default=None, description="Age in whole decades: 80 means 80 to 89")


class MembershipIn(StrictModel):
    user_id: uuid.UUID
    team_role: TeamRole
    start_date: date | None = Field(
        default=None, description="Default today (JST); from a year ago to 90 days ahead")


class MembershipEnd(StrictModel):
    end_date: date | None = Field(
        default=None, description="Default today; between the start date and today. Leave it out for a "
                                  "membership that has not started: that is cancelled")
    reason: str | None = Field(default=None, max_length=200)


class MembershipOut(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    profession: str
    organisation_id: uuid.UUID
    organisation_name: str
    team_role: str
    start_date: date
    end_date: date | None
    active: bool
    cancelled: bool = Field(description="Ended before it started: it never gave access")
    added_by: uuid.UUID
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None
