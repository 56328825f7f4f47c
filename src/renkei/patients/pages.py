"""Pages: registering a patient, editing the registration, and the patient's registration and care team
(adding and ending members calls the team API)."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep
from renkei.auth.service import Actor
from renkei.db.session import SessionDep
from renkei.db.types import today_jst
from renkei.directory import roster
from renkei.errors import FieldProblem, Forbidden, NotFound
from renkei.patients import service
from renkei.patients.models import TeamRole
from renkei.patients.schemas import CareLevel, PatientCreate, PatientIdentity, Sex
from renkei.web.pages import page_context
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)
M = TypeVar("M", bound=PatientIdentity)

Text = Annotated[str, Form(max_length=300)]
Short = Annotated[str, Form(max_length=100)]
Code = Annotated[str, Form(max_length=40)]


def _identity_form(**fields: str) -> dict[str, str]:
    """What was typed, trimmed (the kana reading as full-width katakana, single spaces); kept to show the form
    again next to its problems."""
    form = {key: value.strip() for key, value in fields.items()}
    kana = " ".join(unicodedata.normalize("NFKC", form.get("name_kana", "")).split())
    form["name_kana"] = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in kana)
    return form


def _validated(model: type[M], form: dict[str, str]) -> M:
    # An empty field is "not given": optional fields become None, required ones report "missing".
    return model.model_validate({key: value for key, value in form.items() if value})


def _form_page(request: Request, session: Session, actor: Actor, *, form: dict[str, Any],
               patient_id: uuid.UUID | None = None, problems: Sequence[FieldProblem] = (),
               status: int = 200) -> Response:
    by_path: dict[str, list[FieldProblem]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    ctx = page_context(
        request, session, actor, form=form, patient_id=patient_id, errors=list(problems),
        field_errors=by_path,
        sexes=[s.value for s in Sex], care_levels=[c.value for c in CareLevel],
        team_roles=[r.value for r in TeamRole], today=today_jst(),
    )
    return render(request, "patient_form.html", ctx, status_code=status)


def _require_registrar(actor: Actor) -> None:
    if not service.may_register(actor):
        raise Forbidden("Municipal coordinators and region administrators do not register patients "
                        "(連携コーディネーター・地域管理者は患者を登録できません)")


@router.get("/patients/new")
def register_form(request: Request, actor: ActorDep, session: SessionDep) -> Response:
    """The registration form; the registering professional becomes the first member of the care team."""
    _require_registrar(actor)
    return _form_page(request, session, actor, form={"team_role": _default_role(actor)})


@router.post("/patients/new")
def register_submit(
    request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep, name: Short = "",
    name_kana: Short = "", birth_date: Code = "", sex: Code = "", address: Text = "", phone: Code = "",
    care_insurance_number: Code = "", health_insurance_number: Code = "", care_level: Code = "",
    care_level_valid_from: Code = "", care_level_valid_until: Code = "", team_role: Code = "",
) -> Response:
    """Register; problems are shown next to the fields they concern and nothing is stored."""
    _require_registrar(actor)
    form = _identity_form(
        name=name, name_kana=name_kana, birth_date=birth_date, sex=sex, address=address, phone=phone,
        care_insurance_number=care_insurance_number, health_insurance_number=health_insurance_number,
        care_level=care_level, care_level_valid_from=care_level_valid_from,
        care_level_valid_until=care_level_valid_until, team_role=team_role)
    try:
        data = _validated(PatientCreate, form)
    except ValidationError as exc:
        return _form_page(request, session, actor, form=form, problems=problems_from_errors(exc.errors()),
                          status=422)
    view = service.register(session, keyring=keyring, actor=actor, data=data)
    return RedirectResponse(f"/patients/{view.id}", status_code=303)


@router.get("/patients/{patient_id}/edit")
def edit_form(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
              keyring: KeyringDep) -> Response:
    """The registration details, to correct or bring up to date (care level, address, insurance)."""
    patient = service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    if not access.can(session, actor, Action.update_registration, patient_id):
        raise NotFound()
    form = {key: "" if value is None else str(value)
            for key, value in patient.identity.model_dump(mode="json").items()}
    return _form_page(request, session, actor, form=form, patient_id=patient_id)


@router.post("/patients/{patient_id}/edit")
def edit_submit(
    patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    name: Short = "", name_kana: Short = "", birth_date: Code = "", sex: Code = "", address: Text = "",
    phone: Code = "", care_insurance_number: Code = "", health_insurance_number: Code = "",
    care_level: Code = "", care_level_valid_from: Code = "", care_level_valid_until: Code = "",
) -> Response:
    """Save the registration (re-encrypted, lookup indexes rebuilt)."""
    form = _identity_form(
        name=name, name_kana=name_kana, birth_date=birth_date, sex=sex, address=address, phone=phone,
        care_insurance_number=care_insurance_number, health_insurance_number=health_insurance_number,
        care_level=care_level, care_level_valid_from=care_level_valid_from,
        care_level_valid_until=care_level_valid_until)
    try:
        data = _validated(PatientIdentity, form)
    except ValidationError as exc:
        if not access.can(session, actor, Action.update_registration, patient_id):
            # Outsiders get the decision point's 404 (the denial audited), not the form again.
            access.require(session, actor, Action.update_registration, patient_id, event="patient.update")
        return _form_page(request, session, actor, form=form, patient_id=patient_id,
                          problems=problems_from_errors(exc.errors()), status=422)
    service.update_identity(session, keyring=keyring, actor=actor, patient_id=patient_id, data=data)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


def _default_role(actor: Actor) -> str:
    by_profession = {"physician": TeamRole.attending_physician, "nurse": TeamRole.visiting_nurse,
                     "pharmacist": TeamRole.pharmacist, "care_manager": TeamRole.care_manager,
                     "msw": TeamRole.discharge_coordinator, "therapist": TeamRole.therapist,
                     "care_worker": TeamRole.care_worker, "dentist": TeamRole.dentist,
                     "dietitian": TeamRole.dietitian}
    return by_profession.get(actor.profession, TeamRole.other).value


@router.get("/patients/{patient_id}")
def patient_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                 keyring: KeyringDep) -> Response:
    """A patient's registration and care team; members add and end memberships here."""
    patient = service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    team = service.list_team(session, actor=actor, patient_id=patient_id)
    manage = access.can(session, actor, Action.manage_team, patient_id).allowed
    clinical = access.can(session, actor, Action.read_clinical, patient_id).allowed
    editable = access.can(session, actor, Action.update_registration, patient_id).allowed
    return render(request, "patient.html", page_context(
        request, session, actor, patient=patient, patient_id=patient_id, team=team, manage=manage,
        clinical=clinical, editable=editable,
        professionals=roster.active_professionals(session) if manage else [],
        team_roles=[r.value for r in TeamRole], today=today_jst(), tab="patient",
        start_min=today_jst() - service.MAX_BACKDATE, start_max=today_jst() + service.MAX_AHEAD,
    ))
