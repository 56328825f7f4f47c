"""Entries: post, draft edits, amendments, entered-in-error, read receipts and receipt acknowledgements.

Nothing here deletes: an amendment adds a version, "entered in error" is a status, a discarded draft too.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.locking import get_locked
from renkei.db.session import after_commit, upsert
from renkei.db.types import new_id, utcnow
from renkei.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from renkei.notify import entries as notify_entries
from renkei.patients import locks
from renkei.sheets import service as sheets
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline import content, guard, paper, views
from renkei.timeline.exceptions import (
    DraftNotPosted,
    EntryEnteredInError,
    EntryImmutable,
    EntryNotCurrent,
    IfMatchRequired,
    NotARecipient,
    NotAuthor,
    PaperEntryNotAmendable,
    StaleVersion,
)
from renkei.timeline.models import (
    Attachment,
    EntryAttachment,
    EntryRead,
    EntryRecipient,
    EntryStatus,
    Priority,
    TimelineEntry,
)
from renkei.timeline.schemas import AmendIn, DraftUpdate, EnteredInErrorIn, EntryCreate, EntryOut, RecipientIn

log = logging.getLogger("renkei.timeline")


class EntryEvent(StrEnum):
    created = "entry.created"
    amended = "entry.amended"
    entered_in_error = "entry.entered_in_error"
    acknowledged = "entry.acknowledged"


def entry_event(session: Session, kind: EntryEvent, entry: TimelineEntry, actor: Actor,
                recipients: Sequence[EntryRecipient] | None = None) -> None:
    """The one place where a timeline change becomes an event: an outbox row, and a log line after commit."""
    notify_entries.entry_event(session, kind=kind.value, entry=entry, actor=actor, recipients=recipients)
    record = {"event": kind.value, "entry_id": str(entry.id), "record_id": str(entry.record_id),
              "patient_id": str(entry.patient_id), "sheet": entry.sheet_id, "priority": entry.priority,
              "actor_id": str(actor.user_id)}
    after_commit(session, lambda: log.info(json.dumps(record)))


# -- posting ---------------------------------------------------------------------------------


def create_entry(
    session: Session, *, keyring: Keyring, registry: SheetRegistry, settings: Settings, actor: Actor,
    patient_id: uuid.UUID, body: EntryCreate,
) -> EntryOut:
    """Post an entry (or save a private draft) after the access decision and full validation."""
    sheet = sheets.resolve(registry, body.sheet, body.version)
    decision = guard.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                             sheet_id=sheet.id)
    if body.paper_intake_id is not None and paper.image_withheld(registry, sheet.id, sheet.version,
                                                                  decision.categories):
        raise Forbidden("This paper form has parts your consent scope leaves out: someone who may read "
                        "all of it transcribes it (閲覧範囲外の項目を含む用紙のため転記できません)")
    checked = content.check(session, registry, sheet, actor, patient_id, data=body.data,
                            recipients=body.recipients, attachment_ids=body.attachment_ids,
                            readable=decision.categories)
    source = None
    if body.paper_intake_id is not None:
        source = paper.transcription_target(session, patient_id=patient_id, sheet=sheet,
                                            paper_intake_id=body.paper_intake_id, status=body.status)
    now = utcnow()
    entry = _new_entry(actor, patient_id, sheet, now, status=body.status, priority=body.priority.value,
                       transcribes_id=source.id if source else None)
    _store(session, keyring, entry, sheet, checked, now)
    access.disclosed(decision, [entry.id] + ([source.id] if source else []))
    if source is not None:
        paper.note_changed(session, source.paper_intake_id)
    if entry.status == EntryStatus.final:
        entry_event(session, EntryEvent.created, entry, actor, checked.recipients)
    return _view(session, keyring, settings, actor, entry, decision.categories, stored=checked)


def update_draft(
    session: Session, *, keyring: Keyring, registry: SheetRegistry, settings: Settings, actor: Actor,
    entry_id: uuid.UUID, body: DraftUpdate, if_match: str | None,
) -> EntryOut:
    """Replace a draft (author only, If-Match required); `status: final` posts it."""
    entry = _load(session, actor, entry_id, for_update=True)
    decision = guard.require(session, actor, Action.write_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id])
    if entry.status != EntryStatus.draft:
        raise EntryImmutable()
    try:
        _check_if_match(entry, if_match, required=True)
    except StaleVersion:
        notify_entries.draft_conflict(session, entry=entry, actor=actor)
        raise
    sheet = sheets.resolve(registry, entry.sheet_id, entry.sheet_version)
    checked = content.check(session, registry, sheet, actor, entry.patient_id, data=body.data,
                            recipients=body.recipients, attachment_ids=body.attachment_ids,
                            readable=decision.categories, previous=_payload(session, keyring, entry))
    now = utcnow()
    entry.status, entry.priority = body.status, body.priority.value
    entry.revision += 1
    entry.updated_at = now
    # Drafts have not been sent, so their addressees and files are still only a plan and may be replaced.
    for old in [*session.scalars(select(EntryRecipient).where(EntryRecipient.entry_id == entry.id)),
                *session.scalars(select(EntryAttachment).where(EntryAttachment.entry_id == entry.id))]:
        session.delete(old)
    session.flush()
    _store(session, keyring, entry, sheet, checked, now)
    if entry.status == EntryStatus.final:
        entry_event(session, EntryEvent.created, entry, actor, checked.recipients)
    return _view(session, keyring, settings, actor, entry, decision.categories, stored=checked)


def amend(
    session: Session, *, keyring: Keyring, registry: SheetRegistry, settings: Settings, actor: Actor,
    entry_id: uuid.UUID, body: AmendIn, if_match: str | None,
) -> EntryOut:
    """Add a new version of a posted entry with the reason; the old version stays viewable."""
    entry = _load(session, actor, entry_id, for_update=True)
    decision = guard.require(session, actor, Action.write_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id])
    _check_changeable(entry, actor)
    if entry.paper_intake_id is not None:
        raise PaperEntryNotAmendable()
    # Two clinicians amending the same version at once would otherwise both succeed, one silently lost.
    _check_if_match(entry, if_match, required=True)
    sheet = sheets.resolve(registry, entry.sheet_id, entry.sheet_version)
    recipients = body.recipients if body.recipients is not None else [
        RecipientIn(organisation_id=r.organisation_id, user_id=r.user_id)
        for r in session.scalars(select(EntryRecipient).where(EntryRecipient.entry_id == entry.id))
    ]
    files = body.attachment_ids if body.attachment_ids is not None else list(session.scalars(
        select(EntryAttachment.attachment_id).where(EntryAttachment.entry_id == entry.id)
        .order_by(EntryAttachment.position)))
    checked = content.check(session, registry, sheet, actor, entry.patient_id, data=body.data,
                            recipients=recipients, attachment_ids=files, readable=decision.categories,
                            previous=_payload(session, keyring, entry))
    now = utcnow()
    new = TimelineEntry(
        id=new_id(), patient_id=entry.patient_id, record_id=entry.record_id, version=entry.version + 1,
        sheet_id=entry.sheet_id, sheet_version=entry.sheet_version, category=entry.category,
        status=EntryStatus.final, priority=(body.priority or entry.priority), author_id=actor.user_id,
        author_organisation_id=actor.organisation_id, author_profession=actor.profession, payload_ct=b"",
        supersedes_id=entry.id, created_at=now, updated_at=now, record_posted_at=entry.record_posted_at,
        transcribes_id=entry.transcribes_id,
    )
    entry.is_head = False
    new.amendment_reason_ct = views.seal(session, keyring, new, views.AMENDMENT_AAD, body.reason)
    _store(session, keyring, new, sheet, checked, now)
    access.disclosed(decision, [new.id])
    entry_event(session, EntryEvent.amended, new, actor, checked.recipients)
    paper.note_entry_changed(session, new)
    return _view(session, keyring, settings, actor, new, decision.categories, stored=checked)


def mark_entered_in_error(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entry_id: uuid.UUID,
    body: EnteredInErrorIn,
) -> EntryOut:
    """Mark the current version as entered in error, with the reason; a draft marked so is discarded."""
    entry = _load(session, actor, entry_id, for_update=True)
    decision = guard.require(session, actor, Action.write_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id])
    _check_changeable(entry, actor, drafts_too=True)
    entry.status = EntryStatus.entered_in_error
    entry.error_at, entry.error_by = utcnow(), actor.user_id
    entry.error_reason_ct = views.seal(session, keyring, entry, views.ERROR_AAD, body.reason)
    session.flush()
    if entry.posted_at is not None:
        entry_event(session, EntryEvent.entered_in_error, entry, actor)
    paper.note_entry_changed(session, entry)
    return _view(session, keyring, settings, actor, entry, decision.categories)


def post_paper_entry(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    sheet: SheetDef, attachment_id: uuid.UUID, paper_intake_id: uuid.UUID,
) -> EntryOut:
    """File a paper form on the timeline (紙・転記待ち): an entry of its sheet whose record is the image.

    Its data is empty and not validated against the sheet (see `paper`); the image opens to team members
    who may read the sheet's category and every category of its parts (`paper.image_withheld`).
    """
    decision = guard.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                             sheet_id=sheet.id, targets=[attachment_id])
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.patient_id != patient_id:
        raise NotFound()
    now = utcnow()
    entry = _new_entry(actor, patient_id, sheet, now, status=EntryStatus.final,
                       priority=Priority.normal.value, record_posted_at=now, posted_at=now,
                       paper_intake_id=paper_intake_id, paper_attachment_id=attachment_id)
    entry.payload_ct = views.seal(session, keyring, entry, views.PAYLOAD_AAD, {})
    session.add(entry)
    session.flush()
    if attachment.linked_at is None:
        attachment.linked_at, attachment.sheet_id, attachment.category = now, sheet.id, sheet.category
    record_reads(session, actor.user_id, [entry.id])
    access.disclosed(decision, [entry.id])
    entry_event(session, EntryEvent.created, entry, actor)
    return _view(session, keyring, settings, actor, entry, decision.categories)


def _new_entry(actor: Actor, patient_id: uuid.UUID, sheet: SheetDef, now: datetime, *, status: str,
               priority: str, **extra: Any) -> TimelineEntry:
    """A first version of a new record of `sheet`, by `actor` (its payload is sealed by the caller)."""
    entry_id = new_id()
    return TimelineEntry(
        id=entry_id, patient_id=patient_id, record_id=entry_id, sheet_id=sheet.id,
        sheet_version=sheet.version, category=sheet.category, status=status, priority=priority,
        author_id=actor.user_id, author_organisation_id=actor.organisation_id,
        author_profession=actor.profession, payload_ct=b"",
        created_at=now, updated_at=now, **extra,
    )


def entry_patient(session: Session, *, actor: Actor, entry_id: uuid.UUID) -> uuid.UUID:
    """The patient an entry belongs to (404 when the actor cannot know the entry exists)."""
    return _load(session, actor, entry_id).patient_id


# -- reading ---------------------------------------------------------------------------------


def get_entry(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entry_id: uuid.UUID,
) -> tuple[EntryOut, str]:
    """One entry with who has read it; opening it counts as reading it. Returns the view and its ETag."""
    entry = _load(session, actor, entry_id)
    decision = guard.require(session, actor, Action.read_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id],
                             current=views.is_current_emergency(session, entry))
    if entry.posted_at is not None and not decision.read_only:
        record_reads(session, actor.user_id, [entry.id])
    view = views.build(session, keyring=keyring, settings=settings, actor=actor, entries=[entry], detail=True,
                       readable={entry.patient_id: decision.categories})
    return view[0], views.etag(entry)


def history(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entry_id: uuid.UUID,
) -> list[EntryOut]:
    """Every version of the entry's record, newest first."""
    entry = _load(session, actor, entry_id)
    rows = list(session.scalars(
        select(TimelineEntry).where(TimelineEntry.record_id == entry.record_id)
        .order_by(TimelineEntry.version.desc())
    ))
    decision = guard.require(session, actor, Action.read_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, current=views.is_current_emergency(session, entry))
    if decision.current_only:
        rows = [r for r in rows if r.id == entry.id]  # a break-the-glass grant sees no earlier versions
    access.disclosed(decision, [r.id for r in rows])
    return views.build(session, keyring=keyring, settings=settings, actor=actor, entries=rows,
                       readable={entry.patient_id: decision.categories})


def mark_read(session: Session, *, actor: Actor, entry_id: uuid.UUID) -> None:
    """既読 for one entry. Read receipts are the care team's: a break-the-glass reader leaves none."""
    entry = _load(session, actor, entry_id)
    decision = guard.require(session, actor, Action.read_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id],
                             current=views.is_current_emergency(session, entry))
    if entry.posted_at is None:
        raise DraftNotPosted()
    if not decision.read_only:
        record_reads(session, actor.user_id, [entry.id])


def mark_read_many(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, entry_ids: Sequence[uuid.UUID]
) -> int:
    """既読 for several posted entries of one patient (a timeline page); returns how many were marked
    (none for a break-the-glass reader, whose access is read-only)."""
    decision = guard.require(session, actor, Action.read_clinical, patient_id, category=None)
    if decision.read_only:
        return 0
    ids = list(session.scalars(
        select(TimelineEntry.id).where(
            TimelineEntry.patient_id == patient_id, TimelineEntry.id.in_(entry_ids),
            TimelineEntry.posted_at.is_not(None), access.category_clause(decision, TimelineEntry.category),
        )
    ))
    access.disclosed(decision, ids)
    record_reads(session, actor.user_id, ids)
    return len(ids)


def record_reads(session: Session, user_id: uuid.UUID, entry_ids: Sequence[uuid.UUID]) -> None:
    """Insert read receipts, ignoring ones that exist (two tabs may open the same entry at once)."""
    if not entry_ids:
        return
    now = utcnow()
    # In one order, so that two requests inserting overlapping receipts wait for each other, not in a cycle.
    values = [{"entry_id": eid, "user_id": user_id, "read_at": now} for eid in sorted(set(entry_ids))]
    session.execute(upsert(session, EntryRead.__table__).values(values)  # type: ignore[attr-defined]
                    .on_conflict_do_nothing())


def acknowledge(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entry_id: uuid.UUID,
) -> EntryOut:
    """受領確認 of an entry addressed to me or to my organisation, by a member of the care team."""
    entry = _load(session, actor, entry_id, for_update=True)
    decision = guard.require(session, actor, Action.read_clinical, entry.patient_id, category=entry.category,
                             sheet_id=entry.sheet_id, targets=[entry.id],
                             current=views.is_current_emergency(session, entry))
    if entry.posted_at is None:
        raise DraftNotPosted()
    if decision.read_only:
        # Acknowledging answers for the addressed organisation; an emergency reader outside the team may not.
        audit.record(session, actor=actor, action=Action.write_clinical.value, allowed=False,
                     reason="outside_break_glass_scope", patient_id=entry.patient_id, targets=[entry.id],
                     grant_id=decision.grant_id, event=EntryEvent.acknowledged.value)
        raise NotARecipient("Emergency access is read-only: only the care team acknowledges receipt")
    # Receipt is of what the sender stands by now: an older version would leave the current one awaiting
    # (and flagged overdue) while the recipient believes it done; a retracted entry asks for no receipt.
    if entry.status == EntryStatus.entered_in_error:
        raise EntryEnteredInError()
    if not entry.is_head:
        raise EntryNotCurrent("A newer version of this entry exists: acknowledge that one")
    mine = [
        r for r in session.scalars(select(EntryRecipient).where(EntryRecipient.entry_id == entry.id))
        if r.user_id == actor.user_id or (r.user_id is None and r.organisation_id == actor.organisation_id)
    ]
    if not mine:
        raise NotARecipient()
    now = utcnow()
    pending = [r for r in mine if r.acknowledged_at is None]
    for r in pending:
        r.acknowledged_at, r.acknowledged_by = now, actor.user_id
    record_reads(session, actor.user_id, [entry.id])
    session.flush()
    if pending:
        entry_event(session, EntryEvent.acknowledged, entry, actor)
    return _view(session, keyring, settings, actor, entry, decision.categories)


# -- helpers ---------------------------------------------------------------------------------


def _load(session: Session, actor: Actor, entry_id: uuid.UUID, *, for_update: bool = False) -> TimelineEntry:
    """The entry row, or 404. Another member's draft does not exist as far as anyone else can tell.

    `for_update`: locked and read as committed (`db.locking`): an amendment or a withdrawal may have committed
    since an earlier load in this request; read receipts and addressees are not held up by the lock."""
    if for_update:
        entry = get_locked(session, TimelineEntry, entry_id)
    else:
        entry = session.get(TimelineEntry, entry_id)
    if entry is None or (entry.posted_at is None and entry.author_id != actor.user_id):
        raise NotFound()
    return entry


def _check_changeable(entry: TimelineEntry, actor: Actor, *, drafts_too: bool = False) -> None:
    if entry.author_id != actor.user_id:
        raise NotAuthor()
    if entry.status == EntryStatus.entered_in_error:
        raise EntryEnteredInError()
    if entry.status == EntryStatus.draft and not drafts_too:
        raise DraftNotPosted("A draft is edited with PUT, not amended")
    if not entry.is_head:
        raise EntryNotCurrent()


def _check_if_match(entry: TimelineEntry, if_match: str | None, *, required: bool) -> None:
    if if_match is None or not if_match.strip():
        if required:
            raise IfMatchRequired(headers={"ETag": views.etag(entry)})
        return
    # RFC 9110 §13.1.1: If-Match compares strongly, so a weak tag (W/"...") never matches.
    tags = [t.strip() for t in if_match.split(",")]
    if "*" not in tags and views.etag(entry) not in tags:
        raise StaleVersion(headers={"ETag": views.etag(entry)})


def _payload(session: Session, keyring: Keyring, entry: TimelineEntry) -> dict[str, Any]:
    return views.unseal(session, keyring, entry, views.PAYLOAD_AAD, entry.payload_ct)


def _store(
    session: Session, keyring: Keyring, entry: TimelineEntry, sheet: SheetDef, checked: content.Checked,
    now: datetime,
) -> None:
    """Seal the payload (with the fields the platform owns) and, when posting, link and mark what follows."""
    posting = entry.status == EntryStatus.final
    if posting and entry.record_posted_at is None and sheet.id == "acp":
        # The current ACP is the one posted last, so first postings of one patient's ACPs take turns: each
        # is checked against what the one before it committed, and is stamped as posted after it.
        locks.lock_patient(session, entry.patient_id)
        current_posted_at = _check_not_older_than_current_acp(session, keyring, entry, checked.data)
        now = max(now, utcnow())
        if current_posted_at is not None and now <= current_posted_at:
            # The server that posted the current one has a clock running ahead of this one's.
            now = current_posted_at + timedelta(microseconds=1)
        entry.updated_at = now
    if posting:
        entry.posted_at = now
        entry.record_posted_at = entry.record_posted_at or now
    # provided_at is when the record was first sent: an amendment corrects it, it is not sent again.
    entry.payload_ct = views.seal(session, keyring, entry, views.PAYLOAD_AAD,
                                  _platform_fields(sheet, checked.data, entry.record_posted_at))
    session.add(entry)
    session.flush()
    for row in [*checked.recipients, *checked.attachments]:
        row.entry_id = entry.id
    session.add_all([*checked.recipients, *checked.attachments])
    session.flush()
    if posting:
        content.link_attachments(session, entry, checked.data, [a.attachment_id for a in checked.attachments],
                                 now)
        record_reads(session, entry.author_id, [entry.id])


def _check_not_older_than_current_acp(
    session: Session, keyring: Keyring, entry: TimelineEntry, data: dict[str, Any]
) -> datetime | None:
    """The newest posted ACP record is the current one (the status card, the emergency card, a break-the-glass
    reader all show it). An ACP discussion dated before the current one, posted now (an old paper form found
    and typed in), would silently replace the patient's current wishes: refused, naming the date. Returns
    when the current record was first posted."""
    record = views.current_acp_record(session, entry.patient_id)
    if record == entry.record_id:
        return None
    head = session.scalars(select(TimelineEntry).where(
        TimelineEntry.record_id == record, TimelineEntry.is_head.is_(True))).first() if record else None
    if head is None:
        return None
    current = _payload(session, keyring, head).get("record_date")
    new = data.get("record_date")
    # Both are schema-checked YYYY-MM-DD strings, which order as the dates they name.
    if not (isinstance(current, str) and isinstance(new, str) and new < current):
        return head.record_posted_at
    if entry.transcribes_id is not None:
        # The photographed form stays on the timeline as it is; only its typed copy would become current.
        advice = ("紙の用紙（画像）は記録に残っています。転記せず、必要なら連絡で経緯を共有してください",
                  "The photographed form stays on the timeline: leave it untranscribed and, if needed, "
                  "explain in a message")
    else:
        advice = ("古い記録は連絡や添付で共有してください",
                  "Share an older record as a message or attachment")
    raise InvalidInput("The ACP is dated before the current one", fields=[FieldProblem(
        "/data/record_date",
        f"現在の人生会議の記録（{current}）より前の日付です。登録すると現在の意向として表示されます。{advice[0]}",
        f"Earlier than the current ACP record ({current}): posting it would show it as the current wishes. "
        f"{advice[1]}")])


def _platform_fields(sheet: SheetDef, data: dict[str, Any], provided_at: datetime | None) -> dict[str, Any]:
    """Fields the platform owns whatever the client sent: admission sheet provided_at, ACP status."""
    data = copy.deepcopy(data)
    if sheet.id == "admission-info":
        header = data.setdefault("header", {})
        header.pop("provided_at", None)
        if provided_at is not None:
            header["provided_at"] = provided_at.astimezone(sheets.JST).isoformat(timespec="seconds")
    if sheet.id == "acp":
        # Which ACP is current is derived from the record order, never trusted from the payload.
        data.pop("status", None)
    return data


def _view(
    session: Session, keyring: Keyring, settings: Settings, actor: Actor, entry: TimelineEntry,
    readable: frozenset[str], stored: content.Checked | None = None,
) -> EntryOut:
    """The entry as the API shows it; `stored`: the addressees and files this request just stored for it
    (all it has), so the view need not look them up when there are none."""
    unlinked = stored is not None and not stored.recipients and not stored.attachments
    return views.build(session, keyring=keyring, settings=settings, actor=actor, entries=[entry],
                       readable={entry.patient_id: readable}, unlinked=unlinked)[0]
