"""What an entry holds, checked as one: the sheet data, the ids it refers to and the addressees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.db.types import today_jst
from renkei.errors import FieldProblem, InvalidInput
from renkei.patients.models import CareTeamMembership
from renkei.sheets import service as sheets
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline.models import Attachment, EntryRecipient, TimelineEntry
from renkei.timeline.schemas import RecipientIn


def check(
    session: Session, registry: SheetRegistry, sheet: SheetDef, actor: Actor, patient_id: uuid.UUID,
    data: dict[str, Any],
    recipients: Sequence[RecipientIn],
) -> list[EntryRecipient]:
    """Validate the sheet data, its references and the addressees together: one 422 lists every problem."""
    problems = [FieldProblem("/data" + e.path, e.message_ja, e.message_en)
                for e in sheets.field_errors(registry, sheet, data)]
    if not problems:
        problems += _reference_problems(session, actor, patient_id, data)
    rows, recipient_problems = _recipient_rows(session, patient_id, recipients)
    problems += recipient_problems
    if problems:
        raise InvalidInput("The entry is invalid", fields=problems)
    return rows


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


def _reference_problems(
    session: Session, actor: Actor, patient_id: uuid.UUID, data: dict[str, Any]
) -> list[FieldProblem]:
    """Referenced attachments and entries must belong to this patient and be visible to the author."""
    refs = [(kind, path, uuid.UUID(value)) for kind, path, value in _references(data)]
    wanted = {kind: {ref for k, _, ref in refs if k == kind} for kind in ("attachment", "entry")}
    found: set[uuid.UUID] = set()
    if wanted["attachment"]:
        found |= set(session.scalars(select(Attachment.id).where(
            Attachment.id.in_(wanted["attachment"]), Attachment.patient_id == patient_id,
            or_(Attachment.linked_at.is_not(None), Attachment.uploaded_by == actor.user_id))))
    if wanted["entry"]:
        found |= set(session.scalars(select(TimelineEntry.id).where(
            TimelineEntry.id.in_(wanted["entry"]), TimelineEntry.patient_id == patient_id,
            TimelineEntry.posted_at.is_not(None))))
    return [
        FieldProblem("/data" + path, *(
            ("添付ファイルが見つかりません", "No such attachment for this patient") if kind == "attachment"
            else ("記録が見つかりません", "No such entry for this patient")
        ))
        for kind, path, ref in refs if ref not in found
    ]


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


def link_attachments(session: Session, entry: TimelineEntry, data: dict[str, Any], now: datetime) -> None:
    """The first posted entry to reference an attachment opens it to the team under that entry's category."""
    ids = {uuid.UUID(v) for kind, _, v in _references(data) if kind == "attachment"}
    if not ids:
        return
    unlinked = select(Attachment).where(Attachment.id.in_(ids), Attachment.linked_at.is_(None))
    for attachment in session.scalars(unlinked):
        attachment.linked_at, attachment.sheet_id, attachment.category = now, entry.sheet_id, entry.category
