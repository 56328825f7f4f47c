"""Across my patients: the flags of the patient list, and the addressed sheets I sent and received.

Lists are narrowed in SQL by `access.clinical_clause` (team membership, consent covering my organisation
and the category), like the unread counts; what a list discloses is audited per patient.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.patients import service as patient_service
from renkei.patients.models import Patient
from renkei.timeline import queries, views
from renkei.timeline.models import EntryRead, EntryRecipient, EntryStatus, TimelineEntry
from renkei.timeline.schemas import EntryOut

LIST_LIMIT = 100


@dataclass
class PatientFlags:
    """What the patient list shows next to a name."""

    unread: int = 0
    urgent_unread: int = 0
    awaiting_my_ack: int = 0
    overdue: int = 0


@dataclass
class AddressedItem:
    entry: EntryOut
    patient_name: str
    patient_kana: str
    mine_to_acknowledge: bool = False


@dataclass
class Addressed:
    received: list[AddressedItem] = field(default_factory=list)
    sent: list[AddressedItem] = field(default_factory=list)


def _live(actor: Actor) -> list[ColumnElement[bool]]:
    return [
        TimelineEntry.is_head.is_(True), TimelineEntry.status == EntryStatus.final,
        access.clinical_clause(actor, TimelineEntry.patient_id, TimelineEntry.category),
    ]


def _addressed_to_me(actor: Actor) -> ColumnElement[bool]:
    """Recipient rows an actor answers for: addressed to them, or to their whole organisation."""
    return or_(EntryRecipient.user_id == actor.user_id,
               and_(EntryRecipient.user_id.is_(None), EntryRecipient.organisation_id == actor.organisation_id))


def patient_flags(session: Session, *, settings: Settings, actor: Actor) -> dict[uuid.UUID, PatientFlags]:
    """Unread, urgent unread, and sheets awaiting my acknowledgement (overdue ones too), per patient."""
    flags: dict[uuid.UUID, PatientFlags] = defaultdict(PatientFlags)
    for patient_id, count in queries.unread_counts(session, actor=actor).items():
        flags[patient_id].unread = count
    unread_by_me = ~exists(select(EntryRead.entry_id).where(
        EntryRead.entry_id == TimelineEntry.id, EntryRead.user_id == actor.user_id))
    urgent = session.execute(
        select(TimelineEntry.patient_id, func.count())
        .where(*_live(actor), TimelineEntry.priority == "urgent", TimelineEntry.author_id != actor.user_id,
               unread_by_me)
        .group_by(TimelineEntry.patient_id)
    ).all()
    for patient_id, count in urgent:
        flags[patient_id].urgent_unread = count
    overdue_before = utcnow() - timedelta(hours=settings.ack_overdue_hours)
    # One per entry (addressed to me and to my office is still one sheet to acknowledge), entry by entry:
    # two sheets posted at the same moment are two.
    pending = session.execute(
        select(TimelineEntry.patient_id, TimelineEntry.id, TimelineEntry.posted_at)
        .join(EntryRecipient, EntryRecipient.entry_id == TimelineEntry.id)
        .where(*_live(actor), _addressed_to_me(actor), EntryRecipient.acknowledged_at.is_(None))
        .distinct()
    ).all()
    for patient_id, _entry_id, posted_at in pending:
        flags[patient_id].awaiting_my_ack += 1
        if posted_at is not None and posted_at < overdue_before:
            flags[patient_id].overdue += 1
    return dict(flags)


def addressed(session: Session, *, keyring: Keyring, settings: Settings, actor: Actor) -> Addressed:
    """Sheets addressed to me or my organisation, and sheets I sent to someone, newest first."""
    received_ids = select(EntryRecipient.entry_id).where(_addressed_to_me(actor))
    received_rows = list(session.scalars(
        select(TimelineEntry).where(*_live(actor), TimelineEntry.id.in_(received_ids))
        .order_by(TimelineEntry.posted_at.desc(), TimelineEntry.id.desc()).limit(LIST_LIMIT)
    ))
    with_recipients = select(EntryRecipient.entry_id)
    sent_rows = list(session.scalars(
        select(TimelineEntry).where(*_live(actor), TimelineEntry.author_id == actor.user_id,
                                    TimelineEntry.id.in_(with_recipients))
        .order_by(TimelineEntry.posted_at.desc(), TimelineEntry.id.desc()).limit(LIST_LIMIT)
    ))
    rows = received_rows + [r for r in sent_rows if r not in received_rows]
    names, readable = _patient_names(session, keyring, actor, rows)
    views_of = views.build(session, keyring=keyring, settings=settings, actor=actor, entries=rows,
                           readable=readable)
    built = {e.id: e for e in views_of}

    def item(row: TimelineEntry, *, received: bool) -> AddressedItem:
        entry = built[row.id]
        name, kana = names[row.patient_id]
        mine = received and any(
            r.acknowledged_at is None and (r.user_id == actor.user_id or (
                r.user_id is None and r.organisation_id == actor.organisation_id))
            for r in entry.recipients)
        return AddressedItem(entry, name, kana, mine)

    return Addressed(received=[item(r, received=True) for r in received_rows],
                     sent=[item(r, received=False) for r in sent_rows])


def _patient_names(
    session: Session, keyring: Keyring, actor: Actor, rows: list[TimelineEntry]
) -> tuple[dict[uuid.UUID, tuple[str, str]], dict[uuid.UUID, frozenset[str]]]:
    """Each listed patient's name and the categories the actor may read, with one audited read per patient
    naming the entries shown."""
    by_patient: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        by_patient[row.patient_id].append(row.id)
    names, readable = {}, {}
    for patient_id, entry_ids in by_patient.items():
        decision = access.require(session, actor, Action.read_clinical, patient_id, targets=entry_ids,
                                  event="timeline.addressed")
        readable[patient_id] = decision.categories
        patient = session.get(Patient, patient_id)
        assert patient is not None
        identity = patient_service.decrypt_identity(session, keyring, patient)
        names[patient_id] = (identity.name, identity.name_kana)
    return names, readable
