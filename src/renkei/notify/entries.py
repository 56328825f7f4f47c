"""Timeline events: what posting, amending, entered-in-error, acknowledging and draft conflicts tell whom.

Called by the timeline service in its transaction. The outbox carries ids and kinds only; inbox rows go
to people who may read the entry now (addressees, and the team for urgent entries and for the emergency
information and ACP), so an offline user finds everything there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.db.session import after_rollback
from renkei.notify import delivery, service
from renkei.notify.models import Audience
from renkei.notify.service import Kind
from renkei.patients.models import CareTeamMembership
from renkei.timeline.models import EntryRecipient, Priority, TimelineEntry

# Sheets that make up the patient's current emergency information and ACP (the summary card).
SUMMARY_SHEETS = frozenset({"emergency-info", "acp"})
_ENTRY_KINDS = frozenset({Kind.entry_created, Kind.entry_amended, Kind.entry_entered_in_error,
                          Kind.entry_acknowledged})


def _addressees(session: Session, entry: TimelineEntry,
                recipients: Sequence[EntryRecipient] | None) -> list[uuid.UUID]:
    """Asked to acknowledge this version: addressed members, and the team's members of addressed offices.
    `recipients`: the version's rows when the caller has just stored them (else they are read)."""
    if recipients is None:
        recipients = list(session.scalars(select(EntryRecipient).where(EntryRecipient.entry_id == entry.id)))
    rows = [r for r in recipients if r.acknowledged_at is None]
    users = [r.user_id for r in rows if r.user_id is not None]
    offices = {r.organisation_id for r in rows if r.user_id is None and r.organisation_id is not None}
    if offices:
        users += session.scalars(select(CareTeamMembership.user_id).where(
            CareTeamMembership.patient_id == entry.patient_id, CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.organisation_id.in_(offices)))
    return [uid for uid in dict.fromkeys(users) if uid != entry.author_id]


def entry_event(session: Session, *, kind: str, entry: TimelineEntry, actor: Actor,
                recipients: Sequence[EntryRecipient] | None = None) -> None:
    """An entry was posted, amended, marked entered in error, or acknowledged (`recipients`: the addressee
    rows the caller has just stored with this version, if it has them)."""
    event = Kind(kind)
    if event not in _ENTRY_KINDS:
        raise ValueError(f"not an entry event: {kind}")
    urgent = entry.priority == Priority.urgent
    refs = {"entry_id": entry.id, "record_id": entry.record_id}
    team = {"audience": Audience.team, "patient_id": entry.patient_id, "category": entry.category}
    service.queue(session, kind=event, urgent=urgent, refs=refs, **team)
    if event == Kind.entry_acknowledged:
        if entry.author_id != actor.user_id:
            service.notify_users(session, user_ids=[entry.author_id], kind=event, patient_id=entry.patient_id,
                                 refs=refs)
        return
    # A paper form awaiting transcription changes no current status (the summary skips it).
    summary = entry.sheet_id in SUMMARY_SHEETS and entry.paper_intake_id is None
    if summary:
        service.queue(session, kind=Kind.summary_changed, urgent=urgent,
                      refs={"entry_id": entry.id, "sheet": entry.sheet_id}, **team)
    asked = _addressees(session, entry, recipients) if event != Kind.entry_entered_in_error else []
    if not (asked or urgent or summary):
        return
    readers = delivery.inbox_members(session, entry.patient_id, category=entry.category,
                                     exclude=[entry.author_id])
    asked = [uid for uid in asked if uid in readers]
    for uid in asked:
        service.queue(session, kind=Kind.acknowledgement_requested, user_id=uid, urgent=urgent, refs=refs,
                      **team)
    service.notify_users(session, user_ids=asked, kind=Kind.acknowledgement_requested,
                         patient_id=entry.patient_id, refs=refs, urgent=urgent)
    if urgent or summary:
        others = [uid for uid in readers if uid not in asked]
        if event == Kind.entry_entered_in_error:
            kind_told = event  # those told of it must learn it was withdrawn
        else:
            kind_told = Kind.entry_urgent if urgent else Kind.summary_changed
        service.notify_users(session, user_ids=others, kind=kind_told, patient_id=entry.patient_id, refs=refs,
                             urgent=urgent)


def draft_conflict(session: Session, *, entry: TimelineEntry, actor: Actor) -> None:
    """A stale save of a draft was refused: the author's other devices hear of it.

    The refusal rolls the request back, so the event is appended in the transaction that follows it.
    """
    patient_id, category, entry_id, user_id = entry.patient_id, entry.category, entry.id, actor.user_id
    after_rollback(session, lambda s: service.append(
        s, kind=Kind.draft_conflict, audience=Audience.team, patient_id=patient_id, user_id=user_id,
        category=category, refs={"entry_id": entry_id},
    ))
