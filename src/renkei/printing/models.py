"""Print jobs: what was printed, for which patient, by whom. The QR code on the paper names the row."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field


class PrintKind(StrEnum):
    entry = "entry"  # a timeline entry, filled in
    blank = "blank"  # a blank sheet, with or without the patient header
    emergency_card = "emergency_card"
    consent = "consent"  # 同意書
    consent_withdrawal = "consent_withdrawal"  # 同意撤回書


class PrintJob(SQLModel, table=True):
    """One printout. Ids and codes only: the paper itself carries the content, this row never does."""

    __tablename__ = "print_job"
    __table_args__ = (Index("ix_print_job_patient_printed", "patient_id", "printed_at"),)

    id: uuid.UUID = id_field()
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    form_id: str = Field(sa_column=Column(String(40), nullable=False))
    form_version: int
    output: str = Field(sa_column=Column(String(10), nullable=False))
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id")
    entry_id: uuid.UUID | None = Field(default=None, foreign_key="timeline_entry.id")
    # A consent form printed with a recorded consent's scope, or a withdrawal form naming the version.
    consent_id: uuid.UUID | None = Field(default=None, foreign_key="consent.id")
    printed_by: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    printed_at: datetime = created_at_field()


class IntakeStatus(StrEnum):
    awaiting_transcription = "awaiting_transcription"  # 紙・転記待ち
    transcribed = "transcribed"  # 紙から転記済み
    withdrawn = "withdrawn"  # the paper entry was marked entered in error (a wrong upload)


class PaperIntake(SQLModel, table=True):
    """A filled paper form brought back by photo or scan: the image, which printout it was, and its transcription."""

    __tablename__ = "paper_intake"
    __table_args__ = (Index("ix_paper_intake_patient_status", "patient_id", "status"),)

    id: uuid.UUID = id_field()
    print_job_id: uuid.UUID = Field(foreign_key="print_job.id", index=True)
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    form_id: str = Field(sa_column=Column(String(40), nullable=False))
    form_version: int
    attachment_id: uuid.UUID = Field(foreign_key="attachment.id")
    status: str = Field(sa_column=Column(String(30), nullable=False))
    uploaded_by: uuid.UUID = Field(foreign_key="user_account.id")
    uploaded_at: datetime = created_at_field()
    transcribed_entry_id: uuid.UUID | None = Field(default=None, foreign_key="timeline_entry.id")
    # The paper entry on the timeline (紙・転記待ち) that shows the image to the team.
    entry_id: uuid.UUID | None = Field(default=None, foreign_key="timeline_entry.id")
