"""Timeline request and response models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from renkei.directory.models import Profession
from renkei.db.types import EARLIEST_YEAR, LATEST_YEAR, plausible_day
from renkei.timeline.models import Priority
from renkei.web.schemas import ResponseModel, StrictModel

MAX_RECIPIENTS = 20
MAX_ATTACHMENTS = 20
ATTACHMENTS_HELP = "Uploaded files the entry carries (photos, scans, PDFs), whatever the sheet"


class RecipientIn(StrictModel):
    """An addressee: a whole organisation (any of its members on the team may acknowledge) or one member."""

    organisation_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RecipientIn:
        if (self.organisation_id is None) == (self.user_id is None):
            raise ValueError("give either organisation_id or user_id")
        return self


class EntryCreate(StrictModel):
    sheet: str = Field(min_length=1, max_length=40, description="Sheet id, e.g. discharge-info")
    version: int | None = Field(default=None, ge=1, le=10_000, description="Sheet version (default: newest)")
    data: dict[str, Any]
    status: Literal["draft", "final"] = "final"
    priority: Priority = Priority.normal
    recipients: list[RecipientIn] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS,
                                            description=ATTACHMENTS_HELP)
    paper_intake_id: uuid.UUID | None = Field(
        default=None, description="Transcribe this paper intake (紙から転記): same patient, sheet and version")


class DraftUpdate(StrictModel):
    """Replaces a draft's content; `status: final` posts it."""

    data: dict[str, Any]
    status: Literal["draft", "final"] = "draft"
    priority: Priority = Priority.normal
    recipients: list[RecipientIn] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS,
                                            description=ATTACHMENTS_HELP)


class AmendIn(StrictModel):
    """A new version; recipients, attachment_ids and priority left out stay those of the amended version."""

    data: dict[str, Any]
    reason: str = Field(min_length=1, max_length=1000, description="Why the record is amended (訂正理由)")
    priority: Priority | None = None
    recipients: list[RecipientIn] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    attachment_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_ATTACHMENTS,
                                                   description=ATTACHMENTS_HELP)


class EnteredInErrorIn(StrictModel):
    reason: str = Field(min_length=1, max_length=1000, description="Why the entry was entered in error")


class ReadsIn(StrictModel):
    entry_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)


class AuthorOut(ResponseModel):
    user_id: uuid.UUID
    name: str
    profession: str
    organisation_id: uuid.UUID
    organisation_name: str


class RecipientOut(ResponseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID | None
    organisation_name: str | None
    user_id: uuid.UUID | None
    user_name: str | None
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    acknowledged_by_name: str | None
    overdue: bool


class ErrorMark(ResponseModel):
    at: datetime
    by: uuid.UUID
    by_name: str
    reason: str


class AdmissionBonus(ResponseModel):
    """入院時情報連携加算: (I) by the day of admission, (II) within the following two days."""

    admission_date: date
    deadline_i: date
    deadline_ii: date
    provided_at: datetime | None
    category: Literal["I", "II"] | None
    label: str | None
    state: Literal["pending", "achieved", "missed"]


class DischargeBonus(ResponseModel):
    """退院・退所加算 derived from the contact log (number of contacts, conference attendance)."""

    contacts: int
    conference_attended: bool
    category: Literal["I_a", "I_b", "II_a", "II_b", "III"]
    label: str


class ReadOut(ResponseModel):
    user_id: uuid.UUID
    name: str
    read_at: datetime


class AttachmentOut(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    sheet: str
    content_type: str
    size: int
    created_at: datetime
    metadata_stripped: bool
class PaperOut(ResponseModel):
    """A paper entry (紙・転記待ち / 紙から転記済み): the image of the form, and its transcription if one stands."""

    intake_id: uuid.UUID
    attachment_id: uuid.UUID | None = Field(
        description="The image; null when it is withheld from this reader (see image_withheld)")
    content_type: str | None
    transcribed_entry_id: uuid.UUID | None
    image_withheld: bool = Field(
        default=False,
        description="The form has parts of a category this reader's consent scope leaves out (e.g. "
                    "psychiatric notes): its image is not shown, nor may they transcribe it")


class EntryOut(ResponseModel):
    id: uuid.UUID
    record_id: uuid.UUID
    patient_id: uuid.UUID
    sheet: str
    sheet_version: int
    category: str
    version: int
    revision: int
    status: str
    priority: str
    is_current: bool
    data: dict[str, Any]
    author: AuthorOut
    created_at: datetime
    updated_at: datetime
    posted_at: datetime | None = Field(description="When this version was posted")
    record_posted_at: datetime | None = Field(
        default=None, description="When the record was first posted (the timeline's order)")
    supersedes_id: uuid.UUID | None
    amendment_reason: str | None
    entered_in_error: ErrorMark | None
    recipients: list[RecipientOut]
    awaiting_acknowledgement: bool
    acknowledgement_overdue: bool
    read_by_me: bool
    acp_current: bool | None = None
    admission_bonus: AdmissionBonus | None = None
    discharge_bonus: DischargeBonus | None = None
    read_by: list[ReadOut] | None = None
    attachments: list[AttachmentOut] = Field(default_factory=list, description="Files the entry carries")
    withheld: list[str] = Field(
        default_factory=list,
        description="JSON pointers into `data` of parts left out because the patient's consent does not "
                    "share their category (e.g. ACP wishes, psychiatric notes) with the reader")
    paper: PaperOut | None = None
    transcribed_from_id: uuid.UUID | None = Field(default=None, description="The paper entry transcribed")


class TimelineQuery(StrictModel):
    """Filters of the timeline. Records are ordered and date-filtered by when they were first posted: an
    amended record keeps its place (its `version` > 1 and `posted_at` say it was amended, and when)."""

    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=100)
    kind: list[str] = Field(default_factory=list, max_length=20, description="Sheet ids (unknown ones: 422)")
    profession: list[Profession] = Field(default_factory=list, max_length=20,
                                         description="Author professions (unknown ones: 422)")
    since: date | None = Field(default=None, description="First posted on or after this day (JST)")
    until: date | None = Field(default=None, description="First posted on or before this day (JST)")
    unread: bool = False

    @field_validator("since", "until")
    @classmethod
    def _plausible(cls, day: date | None) -> date | None:
        # As on the sheets: 0001-01-01 or 9999-12-31 is a typo, and JST midnight of it would overflow.
        if day is not None and not plausible_day(day):
            raise PydanticCustomError(
                "date_out_of_range", f"must be a date between {EARLIEST_YEAR} and {LATEST_YEAR}",
                {"ja": f"{EARLIEST_YEAR}年から{LATEST_YEAR}年までの日付を入力してください"})
        return day

    @field_validator("until")
    @classmethod
    def _not_before_since(cls, until: date | None, info: ValidationInfo) -> date | None:
        since = info.data.get("since")
        if until is not None and since is not None and until < since:
            raise PydanticCustomError("until_before_since", "until must not be before since",
                                      {"ja": "終了日が開始日より前になっています"})
        return until


class TimelinePage(ResponseModel):
    items: list[EntryOut]
    next_cursor: str | None


class AcpSummary(ResponseModel):
    entry_id: uuid.UUID
    record_date: str | None
    decision_basis: str | None
    cpr: str | None
    place_of_care: str | None
    place_of_death: str | None
    treatment_preferences: dict[str, Any]
    next_review_date: str | None
    posted_at: datetime | None
    superseded_versions: int = Field(
        description="Earlier ACP records this one superseded (amendments, ACPs entered in error not counted)")


class EmergencySummary(ResponseModel):
    entry_id: uuid.UUID
    posted_at: datetime | None
    resuscitation: dict[str, Any]
    infections: dict[str, Any] | None
    blood_type: str | None
    # The copy of the お薬手帳 that SHEETS.md allows in place of (or beside) a typed medication list.
    medication_notebook_attachment_ids: list[uuid.UUID] = Field(default_factory=list)


class AttendingPhysician(ResponseModel):
    clinic: str | None = None
    doctor: str | None = None
    phone_24h: str | None = None
    team_members: list[str] = Field(default_factory=list)


class PaperAwaiting(ResponseModel):
    """A paper form filed after the structured sheet this card is built from, not yet transcribed."""

    entry_id: uuid.UUID
    sheet: str
    posted_at: datetime


class SummaryOut(ResponseModel):
    """現在の状態: what a clinician needs at a glance, each part traceable to the entry it came from."""

    patient_id: uuid.UUID
    acp: AcpSummary | None
    emergency: EmergencySummary | None
    resuscitation_wish: str | None = Field(description="Latest emergency sheet: full_treatment|dnar|...")
    resuscitation_conflict: bool = Field(description="Emergency sheet and current ACP disagree on CPR")
    allergies: list[dict[str, Any]]
    medications: list[dict[str, Any]]
    attending_physician: AttendingPhysician
    emergency_contacts: list[dict[str, Any]]
    key_person: dict[str, Any] | None
    key_person_entry_id: uuid.UUID | None
    paper_awaiting: list[PaperAwaiting] = Field(
        default_factory=list,
        description="Emergency or ACP forms filed on paper after the entries this card shows and not yet "
                    "transcribed: the card may be out of date until they are")
    withheld: list[str] = Field(
        default_factory=list,
        description="JSON pointers into this summary left out because the patient's consent does not share "
                    "their category with the reader (e.g. /resuscitation_wish when ACP is excluded)")
