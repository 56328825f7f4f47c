"""Timeline tables: versioned entries (never deleted), recipients, read receipts, attachments.

Every column that can hold patient information is AEAD ciphertext under the patient's data key; the clear
columns are ids, codes and times only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class EntryStatus(StrEnum):
    draft = "draft"
    final = "final"
    entered_in_error = "entered_in_error"


class Priority(StrEnum):
    normal = "normal"
    urgent = "urgent"


class TimelineEntry(SQLModel, table=True):
    """One version of one record on a patient's timeline.

    A record is the chain of versions sharing `record_id` (the first version's id). Only the newest version
    (`is_head`) appears on the timeline; an amendment adds a row and clears `is_head` on the one it replaces.
    """

    __tablename__ = "timeline_entry"
    __table_args__ = (
        UniqueConstraint("record_id", "version", name="uq_timeline_entry_record_version"),
        # The feed: a patient's current versions by when each record was first posted, ties broken by the
        # record id (an amendment's new row id would move the record across a page cursor).
        Index("ix_timeline_entry_feed_by_record", "patient_id", "is_head", "record_posted_at", "record_id"),
        Index("ix_timeline_entry_sheet", "patient_id", "sheet_id", "is_head", "status"),
    )

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    record_id: uuid.UUID = Field(index=True)
    version: int = Field(default=1)
    revision: int = Field(default=1)
    sheet_id: str = Field(sa_column=Column(String(40), nullable=False))
    sheet_version: int
    category: str = Field(sa_column=Column(String(20), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    priority: str = Field(sa_column=Column(String(10), nullable=False))
    is_head: bool = True
    author_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    author_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    author_profession: str = Field(sa_column=Column(String(30), nullable=False))
    payload_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    supersedes_id: uuid.UUID | None = Field(default=None, foreign_key="timeline_entry.id")
    amendment_reason_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    # When the record first became visible to the team (a draft has none); versions keep their record's
    # first time so the current ACP is the most recently *recorded* one, not the most recently corrected.
    record_posted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    posted_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    error_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    error_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    error_reason_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # A paper entry (紙・転記待ち): the photographed or scanned form of this sheet, filed from the paper
    # intake it names (printing's paper_intake row; no foreign key, the timeline knows no printing table).
    # Its data is empty: the image is the record until a structured entry transcribes it.
    paper_intake_id: uuid.UUID | None = Field(default=None, unique=True, index=True)
    paper_attachment_id: uuid.UUID | None = Field(default=None, foreign_key="attachment.id")
    # On every version of a structured record transcribed from paper (紙から転記): the paper entry.
    transcribes_id: uuid.UUID | None = Field(default=None, foreign_key="timeline_entry.id", index=True)


class EntryRecipient(SQLModel, table=True):
    """An addressee of an entry version (an organisation or one member) and its receipt acknowledgement."""

    __tablename__ = "entry_recipient"

    id: uuid.UUID = id_field()
    entry_id: uuid.UUID = Field(foreign_key="timeline_entry.id", index=True)
    organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id", index=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True)
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    acknowledged_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")


class EntryAttachment(SQLModel, table=True):
    """A file an entry version carries itself (photos, scans, PDFs), besides the ones its sheet data names."""

    __tablename__ = "entry_attachment"

    entry_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("timeline_entry.id"), primary_key=True)
    )
    attachment_id: uuid.UUID = Field(sa_column=Column(Uuid(), ForeignKey("attachment.id"), primary_key=True))
    position: int = Field(sa_column=Column(Integer, nullable=False))


class EntryRead(SQLModel, table=True):
    """既読: one row per member per entry version, written the first time they open it."""

    __tablename__ = "entry_read"

    entry_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("timeline_entry.id"), primary_key=True)
    )
    user_id: uuid.UUID = Field(sa_column=Column(Uuid(), ForeignKey("user_account.id"), primary_key=True))
    read_at: datetime = created_at_field()


class Attachment(SQLModel, table=True):
    """An uploaded photo, scan or PDF. Content and original file name are encrypted; the type was sniffed."""

    __tablename__ = "attachment"

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    uploaded_by: uuid.UUID = Field(foreign_key="user_account.id")
    content_type: str = Field(sa_column=Column(String(40), nullable=False))
    size: int
    filename_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_ct: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = created_at_field()
    # The sheet it was uploaded for, then the first posted entry that references it: access follows its
    # category. Until an entry is posted (`linked_at`) only the uploader may open it.
    sheet_id: str = Field(sa_column=Column(String(40), nullable=False))
    category: str = Field(sa_column=Column(String(20), nullable=False))
    linked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
