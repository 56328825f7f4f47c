"""Page: a patient's registration and care team, with adding and ending members (calls the team API)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep
from renkei.db.session import SessionDep
from renkei.db.types import today_jst
from renkei.directory import roster
from renkei.patients import service
from renkei.patients.models import TeamRole
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)

@router.get("/patients/{patient_id}")
def patient_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                 keyring: KeyringDep) -> Response:
    """A patient's registration and care team; members add and end memberships here."""
    patient = service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    team = service.list_team(session, actor=actor, patient_id=patient_id)
    manage = access.can(session, actor, Action.manage_team, patient_id).allowed
    clinical = access.can(session, actor, Action.read_clinical, patient_id).allowed
    return render(request, "patient.html", page_context(
        request, session, actor, patient=patient, patient_id=patient_id, team=team, manage=manage,
        clinical=clinical, professionals=roster.active_professionals(session) if manage else [],
        team_roles=[r.value for r in TeamRole], today=today_jst(), tab="patient",
        start_min=today_jst() - service.MAX_BACKDATE, start_max=today_jst() + service.MAX_AHEAD,
    ))
