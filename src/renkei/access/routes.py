"""JSON API: break-the-glass, its review queue, and a patient's access log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from renkei.access import break_glass, reports
from renkei.access import service as access
from renkei.access.schemas import AccessLogEntry, BreakGlassIn, GrantOut, ReviewIn
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep, OrgAdminDep, SettingsDep
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.db.session import SessionDep
from renkei.idempotency import service as idempotency

router = APIRouter(tags=["access"])


def _grant_guard(settings: Settings) -> idempotency.Guard:
    def admit(session: Session, actor: Actor, patient_id: uuid.UUID) -> None:
        break_glass.admit(session, settings=settings, actor=actor, patient_id=patient_id)

    def replay(session: Session, actor: Actor, patient_id: uuid.UUID, category: str | None) -> None:
        # The stored grant is served again only while it still lets its holder read.
        access.require(session, actor, Action.read_emergency, patient_id)

    return idempotency.Guard(admit, replay)


@router.post("/patients/{patient_id}/break-glass", response_model=GrantOut,
             status_code=status.HTTP_201_CREATED, summary="Request emergency access (緊急時アクセス)")
def request_break_glass(patient_id: uuid.UUID, body: BreakGlassIn, request: Request, actor: ActorDep,
                        session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
                        idempotency_key: idempotency.IdempotencyKeyHeader = None):
    """Read-only emergency scope for a limited time, after an exact lookup, a confirmation and the password
    again; retry-safe with an `Idempotency-Key`."""
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path,
                                                    idempotency.without_secrets(body)),
        produce=lambda: break_glass.request_grant(session, settings=settings, keyring=keyring, actor=actor,
                                                  patient_id=patient_id, data=body),
        guard=_grant_guard(settings),
    )
    return idempotency.respond(outcome)


@router.get("/break-glass/reviews", response_model=list[GrantOut], summary="Emergency accesses to review")
def review_queue(actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep, pending: bool = True):
    """My organisation's grants (region admins: every grant); pending ones unless `pending=false`."""
    return break_glass.review_queue(session, keyring=keyring, actor=actor, pending_only=pending)


@router.post("/break-glass/{grant_id}/review", response_model=GrantOut, summary="Review an emergency access")
def review(grant_id: uuid.UUID, body: ReviewIn, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep):
    """Record the disposition; each grant is reviewed once (409 when it already has been, also by an
    administrator reviewing it at the same moment)."""
    return break_glass.review(session, keyring=keyring, actor=actor, grant_id=grant_id, data=body)


@router.post("/break-glass/{grant_id}/revoke", response_model=GrantOut, summary="End an emergency access now")
def revoke(grant_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep):
    """End a running grant at once; it stays in the review queue (409 when it has already ended)."""
    return break_glass.revoke(session, keyring=keyring, actor=actor, grant_id=grant_id)


@router.get("/patients/{patient_id}/access-log", response_model=list[AccessLogEntry],
            summary="Who accessed this record")
def access_log(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep,
               before_seq: Annotated[int | None, Query(ge=1)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """Every access, allowed or denied, newest first: the answer to a patient's disclosure request."""
    return reports.access_log(session, actor=actor, patient_id=patient_id, before_seq=before_seq, limit=limit)
