"""Pages: my patients and a patient's registration with the care team."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from renkei.auth.dependencies import ActorDep, KeyringDep
from renkei.db.session import SessionDep
from renkei.patients import service
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/patients")
def patients_page(request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep) -> Response:
    """My patients."""
    patients = service.list_mine(session, keyring=keyring, actor=actor)
    return render(request, "patients.html", page_context(request, session, actor, patients=patients))


@router.get("/patients/{patient_id}")
def patient_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                 keyring: KeyringDep) -> Response:
    """A patient's registration and care team."""
    patient = service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    team = service.list_team(session, actor=actor, patient_id=patient_id)
    return render(request, "patient.html", page_context(request, session, actor, patient=patient, team=team))
