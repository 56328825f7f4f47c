"""What an entry holds, checked as one: the sheet data, the files and ids it refers to, the addressees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.db.types import today_jst
from renkei.errors import FieldProblem, InvalidInput
from renkei.patients.models import CareTeamMembership
from renkei.sheets import service as sheets
from renkei.sheets import subtrees
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline import views
from renkei.timeline.models import Attachment, EntryAttachment, EntryRecipient, TimelineEntry
from renkei.timeline.schemas import RecipientIn

NOT_SHARED = ("患者さんの同意の範囲外の項目のため、入力・変更できません",
              "This part is outside what the patient's consent shares with you, so you cannot fill it in")
NO_ATTACHMENT = ("添付ファイルが見つかりません", "No such attachment for this patient")


@dataclass
class Checked:
    """An entry version's content, ready to store: its data (with the parts carried over that the author may
    not see), its addressees and the files it carries."""

    data: dict[str, Any]
    recipients: list[EntryRecipient]
    attachments: list[EntryAttachment]


def check(
    session: Session, registry: SheetRegistry, sheet: SheetDef, actor: Actor, patient_id: uuid.UUID, *,
    data: dict[str, Any], recipients: Sequence[RecipientIn], attachment_ids: Sequence[uuid.UUID],
    readable: frozenset[str], previous: dict[str, Any] | None = None,
) -> Checked:
    """Validate the sheet data, its references, the files and the addressees together: one 422 lists every
    problem.

    `readable` are the categories the author's consent covers. Parts of the sheet with another category of
    their own cannot be supplied (422 naming them); those of `previous` (the version amended or the draft
    replaced) are carried over unchanged, and the schema's demands inside them are not the author's to meet.
    """
    hidden = views.withheld_subtrees(registry, sheet.id, sheet.version, readable)
    problems = [FieldProblem("/data" + pointer, *NOT_SHARED) for pointer in subtrees.supplied(data, hidden)]
    full = subtrees.carry(previous, data, hidden) if previous is not None and not problems else data
    problems += [FieldProblem("/data" + e.path, e.message_ja, e.message_en)
                 for e in sheets.field_errors(registry, sheet, full)
                 if not any(subtrees.matches(e.path, s.pattern) for s in hidden)]
    if not problems:
        problems += _reference_problems(session, actor, patient_id, data, readable,
                                        registry.entry_refs(sheet.id, sheet.version))
    files, file_problems = _attachment_rows(session, actor, patient_id, attachment_ids, readable)
    rows, recipient_problems = _recipient_rows(session, patient_id, recipients)
    problems += file_problems + recipient_problems
    if problems:
        raise InvalidInput("The entry is invalid", fields=problems)
    return Checked(full, rows, files)


def _references(node: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(kind, pointer, id) for every attachment and entry id the data refers to."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}/{key}"
            if key.endswith("attachment_ids") and isinstance(value, list):
                yield from (("attachment", f"{child}/{i}", v)
                            for i, v in enumerate(value) if isinstance(v, str))
            elif key.endswith("entry_id") and isinstance(value, str):
                yield "entry", child, value
            else:
                yield from _references(value, child)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _references(item, f"{path}/{i}")


def _usable_files(
    session: Session, actor: Actor, patient_id: uuid.UUID, ids: set[uuid.UUID], readable: frozenset[str]
) -> set[uuid.UUID]:
    """Of these attachments, those of this patient the author uploaded, or may read once posted."""
    if not ids:
        return set()
    return set(session.scalars(select(Attachment.id).where(
        Attachment.id.in_(ids), Attachment.patient_id == patient_id,
        or_(Attachment.uploaded_by == actor.user_id,
            and_(Attachment.linked_at.is_not(None), Attachment.category.in_(sorted(readable)))))))


def _attachment_rows(
    session: Session, actor: Actor, patient_id: uuid.UUID, ids: Sequence[uuid.UUID], readable: frozenset[str]
) -> tuple[list[EntryAttachment], list[FieldProblem]]:
    """The files the entry carries itself, checked like the ones its data refers to."""
    found = _usable_files(session, actor, patient_id, set(ids), readable)
    problems = [FieldProblem(f"/attachment_ids/{i}", *NO_ATTACHMENT)
                for i, a in enumerate(ids) if a not in found]
    problems += [FieldProblem(f"/attachment_ids/{i}", "同じファイルが重複しています", "The same file is listed twice")
                 for i, a in enumerate(ids) if a in ids[:i]]
    rows = [EntryAttachment(attachment_id=a, position=i) for i, a in enumerate(ids)]
    return ([] if problems else rows), problems


def _reference_problems(
    session: Session, actor: Actor, patient_id: uuid.UUID, data: dict[str, Any], readable: frozenset[str],
    entry_refs: Sequence[tuple[str, str]],
) -> list[FieldProblem]:
    """Referenced attachments and entries must belong to this patient and be visible to the author; a field
    that names the sheet it refers to (`x-entry-sheet`, e.g. the current ACP) must refer to that sheet."""
    refs = [(kind, path, uuid.UUID(value)) for kind, path, value in _references(data)]
    wanted = {kind: {ref for k, _, ref in refs if k == kind} for kind in ("attachment", "entry")}
    files = _usable_files(session, actor, patient_id, wanted["attachment"], readable)
    entries: dict[uuid.UUID, str] = {}
    if wanted["entry"]:
        rows = session.execute(select(TimelineEntry.id, TimelineEntry.sheet_id).where(
            TimelineEntry.id.in_(wanted["entry"]), TimelineEntry.patient_id == patient_id,
            TimelineEntry.posted_at.is_not(None))).all()
        entries = {entry_id: sheet_id for entry_id, sheet_id in rows}
    expected = {path: sheet for pattern, sheet in entry_refs for path, _ in subtrees.select(data, pattern)}
    problems = []
    for kind, path, ref in refs:
        if kind == "attachment" and ref not in files:
            problems.append(FieldProblem("/data" + path, *NO_ATTACHMENT))
        elif kind == "entry" and ref not in entries:
            problems.append(FieldProblem("/data" + path, "記録が見つかりません", "No such entry for this patient"))
        elif kind == "entry" and expected.get(path, entries[ref]) != entries[ref]:
            problems.append(FieldProblem("/data" + path, "この欄で選べる種類の記録ではありません",
                                         f"This field must refer to an entry of the {expected[path]} sheet"))
    return problems


def _recipient_rows(
    session: Session, patient_id: uuid.UUID, recipients: Sequence[RecipientIn]
) -> tuple[list[EntryRecipient], list[FieldProblem]]:
    """Addressees must be on the patient's care team today (a member, or an organisation with a member)."""
    if not recipients:
        return [], []
    team = session.execute(
        select(CareTeamMembership.user_id, CareTeamMembership.organisation_id).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.start_date <= today_jst(),
        )
    ).all()
    team_users, team_orgs = {u for u, _ in team}, {o for _, o in team}
    rows: dict[tuple[uuid.UUID | None, uuid.UUID | None], EntryRecipient] = {}
    problems: list[FieldProblem] = []
    for i, r in enumerate(recipients):
        if r.user_id is not None and r.user_id not in team_users:
            problems.append(FieldProblem(f"/recipients/{i}/user_id", "ケアチームのメンバーではありません",
                                         "Not a member of this patient's care team"))
        elif r.organisation_id is not None and r.organisation_id not in team_orgs:
            problems.append(FieldProblem(f"/recipients/{i}/organisation_id", "ケアチームに参加していない事業所です",
                                         "No member of this organisation is on the care team"))
        else:
            rows.setdefault((r.organisation_id, r.user_id),
                            EntryRecipient(organisation_id=r.organisation_id, user_id=r.user_id))
    return list(rows.values()), problems


def link_attachments(
    session: Session, entry: TimelineEntry, data: dict[str, Any], carried: Sequence[uuid.UUID], now: datetime
) -> None:
    """The first posted entry to reference an attachment (in its data or among the files it carries) opens it
    to the team under that entry's category."""
    ids = {uuid.UUID(v) for kind, _, v in _references(data) if kind == "attachment"} | set(carried)
    if not ids:
        return
    unlinked = select(Attachment).where(Attachment.id.in_(ids), Attachment.linked_at.is_(None))
    for attachment in session.scalars(unlinked):
        attachment.linked_at, attachment.sheet_id, attachment.category = now, entry.sheet_id, entry.category
