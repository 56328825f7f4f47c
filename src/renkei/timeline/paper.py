"""Paper on the timeline: a filed paper form (紙・転記待ち) and the structured entry transcribed from it.

A paper entry is a posted entry of the printed sheet's id and version whose record is the image: its data
is empty and is never validated against the sheet's schema (which requires what only the transcription
fills in). Only `service.post_paper_entry` makes one, so every entry posted through the API is validated
in full. A paper entry never stands in for structured data: the summary and the current ACP skip it.

A transcription is an ordinary entry posted with the paper intake's id: same patient, sheet id and
version; at most one live transcription (head version, final) per paper entry. Its versions keep the
link. The paper intake row (printing's) mirrors the state: the notes left in the session here are read by
printing's pre-commit hook, which this package cannot import.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from renkei.db.locking import locked
from renkei.errors import FieldProblem, InvalidInput
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline.exceptions import PaperAlreadyTranscribed
from renkei.timeline.models import Attachment, EntryStatus, TimelineEntry
from renkei.timeline.schemas import PaperOut

# session.info key: paper intake ids whose transcription state this transaction changed.
CHANGED_KEY = "timeline.paper_changed"


def not_paper(columns: Any = TimelineEntry) -> ColumnElement[bool]:
    """Rows that hold structured data (the summary and the current ACP read only these); `columns` is the
    model or a table's column collection."""
    return columns.paper_intake_id.is_(None)


def image_withheld(registry: SheetRegistry, sheet_id: str, version: int, readable: frozenset[str]) -> bool:
    """Whether a reader may not see a paper form's image: it shows every part of the sheet, so a reader whose
    access decision leaves out the category of any part (psychiatric notes, the ACP wish on an emergency
    sheet) may neither see it nor transcribe it."""
    return any(part.category not in readable for part in registry.subtrees(sheet_id, version))


def note_changed(session: Session, paper_intake_id: uuid.UUID | None) -> None:
    """Tell the paper intake that its transcription state may have changed (read before commit)."""
    if paper_intake_id is not None:
        session.info.setdefault(CHANGED_KEY, set()).add(paper_intake_id)


def note_entry_changed(session: Session, entry: TimelineEntry) -> None:
    """A paper entry, or the transcription of one, was amended or marked entered in error."""
    if entry.paper_intake_id is not None:
        note_changed(session, entry.paper_intake_id)
    elif entry.transcribes_id is not None:
        source = session.get(TimelineEntry, entry.transcribes_id)
        note_changed(session, source.paper_intake_id if source else None)


def paper_entry_id(session: Session, patient_id: uuid.UUID, paper_intake_id: uuid.UUID) -> uuid.UUID | None:
    """The paper entry an intake of this patient filed, if any (the caller decides access to it)."""
    return session.scalars(select(TimelineEntry.id).where(TimelineEntry.paper_intake_id == paper_intake_id,
                                                          TimelineEntry.patient_id == patient_id)).first()


def _problem(path: str, ja: str, en: str) -> InvalidInput:
    return InvalidInput("The paper intake cannot be transcribed into this entry",
                        fields=[FieldProblem(path, ja, en)])


def transcription_target(
    session: Session, *, patient_id: uuid.UUID, sheet: SheetDef, paper_intake_id: uuid.UUID, status: str,
) -> TimelineEntry:
    """The paper entry a new entry transcribes, locked; 422 when it does not fit, 409 when already done."""
    if status != EntryStatus.final:
        raise _problem("/status", "紙からの転記は下書きにせず、確定して送信してください",
                       "A transcription from paper is posted, not saved as a draft")
    paper = session.scalars(locked(
        select(TimelineEntry).where(TimelineEntry.paper_intake_id == paper_intake_id,
                                    TimelineEntry.patient_id == patient_id))).first()
    if paper is None:
        raise _problem("/paper_intake_id", "この患者の紙の取込みが見つかりません",
                       "No paper intake of this patient has this id")
    if paper.status == EntryStatus.entered_in_error:
        raise _problem("/paper_intake_id", "この紙の記録は入力誤りとして取り消されています",
                       "This paper entry was marked as entered in error")
    if (paper.sheet_id, paper.sheet_version) != (sheet.id, sheet.version):
        raise _problem("/sheet", f"紙の様式（{paper.sheet_id} 第{paper.sheet_version}版）と異なる様式です",
                       f"The paper form is {paper.sheet_id} version {paper.sheet_version}")
    if live_transcription(session, paper.id) is not None:
        raise PaperAlreadyTranscribed()
    return paper


def awaiting_after(
    session: Session, patient_id: uuid.UUID, shown: dict[str, datetime | None],
) -> list[tuple[uuid.UUID, str, datetime]]:
    """(entry id, sheet, posted at) of the paper forms of the sheets in `shown` filed after the structured
    entry shown for that sheet (its first posting time; None: none shown) and not transcribed yet: the status
    card built from structured data may be out of date (a DNAR wish changed on paper)."""
    if not shown:
        return []
    done = aliased(TimelineEntry)
    rows = session.execute(
        select(TimelineEntry.id, TimelineEntry.sheet_id, TimelineEntry.posted_at).where(
            TimelineEntry.patient_id == patient_id, TimelineEntry.sheet_id.in_(list(shown)),
            TimelineEntry.paper_intake_id.is_not(None), TimelineEntry.is_head.is_(True),
            TimelineEntry.status == EntryStatus.final,
            ~exists().where(done.transcribes_id == TimelineEntry.id, done.is_head.is_(True),
                            done.status == EntryStatus.final),
        ).order_by(TimelineEntry.posted_at.desc(), TimelineEntry.id.desc())
    ).all()
    return [(entry_id, sheet_id, posted_at) for entry_id, sheet_id, posted_at in rows
            if shown[sheet_id] is None or posted_at > shown[sheet_id]]


def live_transcription(session: Session, paper_entry_id: uuid.UUID) -> uuid.UUID | None:
    """The current version of the entry transcribing this paper entry, if one stands."""
    return session.scalars(
        select(TimelineEntry.id).where(TimelineEntry.transcribes_id == paper_entry_id,
                                       TimelineEntry.is_head.is_(True),
                                       TimelineEntry.status == EntryStatus.final).limit(1)
    ).first()


def states(session: Session, entries: Sequence[Any]) -> dict[uuid.UUID, PaperOut]:
    """What the views show of the paper entries among `entries`: the image and the transcription, if any."""
    papers = [e for e in entries if e.paper_intake_id is not None]
    if not papers:
        return {}
    ids = [e.id for e in papers]
    done = {paper_id: entry_id for paper_id, entry_id in session.execute(
        select(TimelineEntry.transcribes_id, TimelineEntry.id).where(
            TimelineEntry.transcribes_id.in_(ids), TimelineEntry.is_head.is_(True),
            TimelineEntry.status == EntryStatus.final))}
    types = {attachment_id: content_type for attachment_id, content_type in session.execute(
        select(Attachment.id, Attachment.content_type).where(
            Attachment.id.in_([e.paper_attachment_id for e in papers])))}
    return {
        e.id: PaperOut(intake_id=e.paper_intake_id, attachment_id=e.paper_attachment_id,
                       content_type=types.get(e.paper_attachment_id), transcribed_entry_id=done.get(e.id))
        for e in papers
    }
