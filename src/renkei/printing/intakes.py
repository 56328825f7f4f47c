"""Reading paper intakes: one patient's (API), and those awaiting transcription across my patients (page).

Narrowed in SQL by the category of each intake's paper entry, as the timeline is: an office the consent
leaves out of a category does not learn that paper of that category arrived.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.crypto.keyring import Keyring
from renkei.patients import service as patient_service
from renkei.printing.intake import intake_out
from renkei.printing.models import IntakeStatus, PaperIntake
from renkei.printing.schemas import PaperIntakeOut
from renkei.timeline.models import TimelineEntry

LIST_EVENT = "paper_intake.list"
AWAITING_LIMIT = 100


def list_for_patient(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, status: IntakeStatus | None,
) -> list[PaperIntakeOut]:
    """The patient's paper intakes, newest first, of the categories the actor may read (404 outsiders)."""
    decision = access.require(session, actor, Action.read_clinical, patient_id, category=None,
                              event=LIST_EVENT)
    if decision.current_only:
        # Break-the-glass reads the current emergency sheet and ACP, never paper (the timeline shows none).
        return []
    query = (
        select(PaperIntake).join(TimelineEntry, TimelineEntry.id == PaperIntake.entry_id)
        .where(PaperIntake.patient_id == patient_id, access.category_clause(decision, TimelineEntry.category))
        .order_by(PaperIntake.uploaded_at.desc(), PaperIntake.id.desc())
    )
    if status is not None:
        query = query.where(PaperIntake.status == status.value)
    rows = list(session.scalars(query))
    access.disclosed(decision, [r.id for r in rows])
    return [intake_out(r) for r in rows]


@dataclass(frozen=True)
class Awaiting:
    intake: PaperIntakeOut
    patient_name: str
    patient_kana: str
    category: str
    can_transcribe: bool  # the actor's profession may write this sheet for this patient


def awaiting_for_me(session: Session, *, keyring: Keyring, actor: Actor) -> list[Awaiting]:
    """Paper awaiting transcription on my patients' timelines, oldest first (the queue to work through)."""
    rows = session.execute(
        select(PaperIntake, TimelineEntry.category)
        .join(TimelineEntry, TimelineEntry.id == PaperIntake.entry_id)
        .where(PaperIntake.status == IntakeStatus.awaiting_transcription.value,
               access.clinical_clause(actor, PaperIntake.patient_id, TimelineEntry.category))
        .order_by(PaperIntake.uploaded_at, PaperIntake.id).limit(AWAITING_LIMIT)
    ).all()
    if not rows:
        return []
    # Names of my patients (listed and audited by the patients service).
    names = {p.id: p.identity for p in patient_service.list_mine(session, keyring=keyring, actor=actor)}
    out = []
    for row, category in rows:
        identity = names.get(row.patient_id)
        if identity is None:
            continue
        allowed = access.can(session, actor, Action.write_clinical, row.patient_id, category=category,
                             sheet_id=row.form_id).allowed
        out.append(Awaiting(intake_out(row), identity.name, identity.name_kana, category, allowed))
    access.record_listed(session, actor, Action.read_clinical, sorted({a.intake.patient_id for a in out}))
    return out
