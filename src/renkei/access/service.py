"""The one access decision point. Every read or write of patient data asks `can` (or `require`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.errors import NotFound
from renkei.patients.models import CareTeamMembership, Patient


class Action(StrEnum):
    read_registration = "read_registration"  # identity header, team list: what consent recording needs
    update_registration = "update_registration"
    manage_team = "manage_team"
    read_clinical = "read_clinical"
    write_clinical = "write_clinical"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    membership_id: uuid.UUID | None = None
    consent_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None

    def __bool__(self) -> bool:
        return self.allowed


def today() -> date:
    return date.today()


def active_membership_clause(actor: Actor, patient_id_col: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """SQL condition: the actor is on the patient's care team today. Used to narrow list queries."""
    return exists(
        select(CareTeamMembership.id).where(
            CareTeamMembership.patient_id == patient_id_col,
            CareTeamMembership.user_id == actor.user_id,
            CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.start_date <= today(),
        )
    )


def active_membership(session: Session, actor: Actor, patient_id: uuid.UUID) -> CareTeamMembership | None:
    return session.scalars(
        select(CareTeamMembership).where(
            and_(
                CareTeamMembership.patient_id == patient_id,
                CareTeamMembership.user_id == actor.user_id,
                CareTeamMembership.ended_at.is_(None),
                CareTeamMembership.start_date <= today(),
            )
        )
    ).first()


def can(
    session: Session, actor: Actor, action: Action, patient_id: uuid.UUID, *, category: str | None = None,
    sheet_id: str | None = None,
) -> Decision:
    """Decide; deny by default. Membership is required for every action on a patient."""
    if session.get(Patient, patient_id) is None:
        return Decision(False, "no_such_patient")
    membership = active_membership(session, actor, patient_id)
    if membership is None:
        return Decision(False, "not_on_team")
    return Decision(True, "team_member", membership_id=membership.id)


def require(
    session: Session, actor: Actor, action: Action, patient_id: uuid.UUID, *, category: str | None = None,
    sheet_id: str | None = None,
) -> Decision:
    """`can`, raising 404 on denial so that outsiders cannot learn that the patient exists."""
    decision = can(session, actor, action, patient_id, category=category, sheet_id=sheet_id)
    if not decision.allowed:
        raise NotFound()
    return decision
