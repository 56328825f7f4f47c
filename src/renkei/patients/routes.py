"""JSON API: patients (only my care teams), exact lookup, and care-team membership."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from renkei.auth.dependencies import ActorDep, CredentialsPresented, KeyringDep, client_ip, run_signed_in
from renkei.auth.service import Actor
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.patients import service
from renkei.patients.schemas import (
    LookupIn,
    LookupResult,
    MembershipEnd,
    MembershipIn,
    MembershipOut,
    PatientCreate,
    PatientIdentity,
    PatientOut,
)
from renkei.idempotency import service as idempotency

router = APIRouter(tags=["patients"])
IdempotencyKeyHeader = Annotated[str | None, Header(max_length=200, description="Retry-safe request key")]


async def get_unread_counter(request: Request) -> service.UnreadCounter | None:
    """The timeline's unread count, wired in by the application (patients must not import the timeline).
    Async: a sync dependency costs a thread-pool hop for an attribute read."""
    return getattr(request.app.state, "unread_counter", None)


UnreadCounterDep = Annotated[service.UnreadCounter | None, Depends(get_unread_counter)]


def _out(view: service.PatientView) -> PatientOut:
    return PatientOut(id=view.id, identity=view.identity, age=view.age, created_at=view.created_at,
                      my_team_role=view.my_team_role, my_team_roles=list(view.my_team_roles),
                      unread_count=view.unread_count)


@router.get("/patients", response_model=list[PatientOut], summary="My patients (care teams I am on)",
            dependencies=[CredentialsPresented])
async def list_patients(request: Request, keyring: KeyringDep, unread: UnreadCounterDep):
    """Only patients whose care team I am on today, each once, with my roles and my unread count."""
    # The first screen of every round: one worker thread (see run_signed_in).
    return await run_signed_in(request, lambda session, actor: [
        _out(v) for v in service.list_mine(session, keyring=keyring, actor=actor, unread=unread)])


@router.post("/patients", response_model=PatientOut, status_code=status.HTTP_201_CREATED,
             summary="Register a patient")
def create_patient(body: PatientCreate, actor: ActorDep, session: SessionDep, keyring: KeyringDep):
    """Register a patient; I become the first member of the care team."""
    return _out(service.register(session, keyring=keyring, actor=actor, data=body))


@router.get("/patients/{patient_id}", response_model=PatientOut, summary="A patient's registration")
def get_patient(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep):
    """Identity and care level; 404 unless I am on the care team."""
    return _out(service.get(session, keyring=keyring, actor=actor, patient_id=patient_id))


@router.put("/patients/{patient_id}", response_model=PatientOut, summary="Update a patient's registration")
def update_patient(patient_id: uuid.UUID, body: PatientIdentity, actor: ActorDep, session: SessionDep,
                   keyring: KeyringDep):
    """Replace the registration details."""
    return _out(service.update_identity(session, keyring=keyring, actor=actor, patient_id=patient_id, data=body))


@router.post("/patients/lookup", response_model=list[LookupResult], summary="Exact patient lookup")
def lookup(body: LookupIn, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep):
    """Exact match by kana name + birth date, or by a whole insurance number; physicians, nurses and
    registering professionals only, throttled. Never a partial search."""
    return service.lookup_for(session, keyring=keyring, actor=actor, client_ip=client_ip(request), data=body)


@router.get("/patients/{patient_id}/team", response_model=list[MembershipOut], summary="Care team")
def list_team(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep):
    """Current and past members."""
    return service.list_team(session, actor=actor, patient_id=patient_id)


@router.post("/patients/{patient_id}/team", response_model=MembershipOut, status_code=status.HTTP_201_CREATED,
             summary="Add a team member")
def add_member(patient_id: uuid.UUID, body: MembershipIn, request: Request, actor: ActorDep,
               session: SessionDep, keyring: KeyringDep, idempotency_key: IdempotencyKeyHeader = None):
    """Add a professional with a team role from a start date; retry-safe with an Idempotency-Key. 409 when
    they already hold that role on the team (also when added by someone else at the same moment)."""
    return _team_change(session, keyring, actor, request, patient_id, idempotency_key, 201, body,
                        lambda: service.add_member(session, actor=actor, patient_id=patient_id, data=body))


@router.delete("/patients/{patient_id}/team/{membership_id}", response_model=MembershipOut,
               summary="End a team membership")
def end_member(patient_id: uuid.UUID, membership_id: uuid.UUID, request: Request, actor: ActorDep,
               session: SessionDep, keyring: KeyringDep, body: MembershipEnd | None = None,
               idempotency_key: IdempotencyKeyHeader = None):
    """End the membership (kept as history), or cancel one not yet started; retry-safe with an
    Idempotency-Key. 409 when it has already ended."""
    data = body or MembershipEnd()
    return _team_change(session, keyring, actor, request, patient_id, idempotency_key, 200, data,
                        lambda: service.end_member(session, actor=actor, patient_id=patient_id,
                                                   membership_id=membership_id, data=data))


def _team_change(
    session: Session, keyring: Keyring, actor: Actor, request: Request, patient_id: uuid.UUID,
    key: str | None, status_code: int, body: MembershipIn | MembershipEnd,
    change: Callable[[], dict[str, Any]],
) -> JSONResponse:
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=key, patient_id=patient_id, status_code=status_code,
        request_fingerprint=idempotency.fingerprint(request.method, request.url.path,
                                                    body.model_dump(mode="json")),
        produce=lambda: MembershipOut.model_validate(change()), guard=idempotency.TEAM,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
