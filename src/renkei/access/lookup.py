"""Exact patient lookup (for break-the-glass, or a duplicate check before registering): who may be told
of a match, and its audit rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from renkei.access.service import (
    BREAK_GLASS_PROFESSIONS,
    Action,
    Decision,
    active_membership,
    current_consent,
)
from renkei.audit import service as audit
from renkei.auth.service import Actor


def may_break_glass(actor: Actor) -> bool:
    """Physicians and nurses may request emergency access to a patient outside their teams."""
    return actor.profession in BREAK_GLASS_PROFESSIONS


def decide(session: Session, actor: Actor, patient_id: uuid.UUID) -> Decision:
    """Whether an exact lookup may name a matching patient to the actor (not audited: see `record`).

    The patient's own care team, always; physicians and nurses, who may break the glass, whatever the
    consent says (emergency disclosure without consent protects life: APPI art. 27(1)(ii)), learning only sex
    and age band; anyone else is told nothing of a patient who withdrew consent.
    """
    membership = active_membership(session, actor, patient_id)
    if membership is None and not may_break_glass(actor):
        consent = current_consent(session, patient_id)
        if consent is not None and consent.withdrawn_at is not None:
            return Decision(False, "consent_withdrawn", consent_id=consent.id)
    return Decision(True, "exact_match", membership_id=membership.id if membership else None)


def record(
    session: Session, actor: Actor, shown: Sequence[uuid.UUID], withheld: Sequence[uuid.UUID] = (),
) -> None:
    """Audit an exact lookup: one row per match shown and one denial per match withheld (both on the
    patient's access log), or one row saying nothing matched."""
    for patient_id in withheld:
        audit.record(session, actor=actor, action=Action.lookup.value, allowed=False,
                     reason="consent_withdrawn", patient_id=patient_id)
    if not shown and not withheld:
        audit.record(session, actor=actor, action=Action.lookup.value, allowed=True, reason="no_match")
    for patient_id in shown:
        audit.record(session, actor=actor, action=Action.lookup.value, allowed=True, reason="exact_match",
                     patient_id=patient_id)
