"""JSON API: a patient's consents (同意), withdrawal (同意撤回) and the signed paper's scan.

Every POST is retry-safe with an `Idempotency-Key` (tablets retry on flaky networks).
"""

from __future__ import annotations

import hashlib
import uuid

from fastapi import APIRouter, Request, UploadFile, status
from fastapi.responses import Response

from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.consent import service
from renkei.consent.schemas import ConsentCreate, ConsentOut, DocumentOut, WithdrawIn
from renkei.db.session import SessionDep
from renkei.idempotency import service as idempotency

router = APIRouter(tags=["consent"])

# Changing a consent needs manage_consent; its answer is read back (on a retry) with read_consent.
GUARD = idempotency.requiring(Action.manage_consent, Action.read_consent)


@router.get("/patients/{patient_id}/consents", response_model=list[ConsentOut], summary="Consent history")
def list_consents(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep):
    """Every version, newest first; the first one listed is the current consent."""
    return service.list_consents(session, keyring=keyring, actor=actor, patient_id=patient_id)


@router.post("/patients/{patient_id}/consents", response_model=ConsentOut,
             status_code=status.HTTP_201_CREATED, summary="Record a consent (new version)")
def record_consent(patient_id: uuid.UUID, body: ConsentCreate, request: Request, actor: ActorDep,
                   session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
                   idempotency_key: idempotency.IdempotencyKeyHeader = None):
    """Record who consented, how, for which organisations and categories; needs the password again."""
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path,
                                                    idempotency.without_secrets(body)),
        produce=lambda: service.record(session, settings=settings, keyring=keyring, actor=actor,
                                       patient_id=patient_id, data=body),
        guard=GUARD,
    )
    return idempotency.respond(outcome)


@router.post("/patients/{patient_id}/consents/{consent_id}/withdraw", response_model=ConsentOut,
             summary="Withdraw the current consent")
def withdraw_consent(patient_id: uuid.UUID, consent_id: uuid.UUID, body: WithdrawIn, request: Request,
                     actor: ActorDep, session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
                     idempotency_key: idempotency.IdempotencyKeyHeader = None):
    """Takes effect immediately; needs the password again. 409 when the consent is no longer the current one
    or is already withdrawn (also when another version was recorded while this request was checked)."""
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=200,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path,
                                                    idempotency.without_secrets(body)),
        produce=lambda: service.withdraw(session, settings=settings, keyring=keyring, actor=actor,
                                         patient_id=patient_id, consent_id=consent_id, data=body),
        guard=GUARD,
    )
    return idempotency.respond(outcome)


@router.post("/patients/{patient_id}/consents/{consent_id}/attachments", response_model=DocumentOut,
             status_code=status.HTTP_201_CREATED, summary="Attach the signed consent form's scan")
def attach_document(patient_id: uuid.UUID, consent_id: uuid.UUID, file: UploadFile, request: Request,
                    actor: ActorDep, session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
                    idempotency_key: idempotency.IdempotencyKeyHeader = None):
    """PDF, JPEG or PNG (sniffed by content), stored encrypted, to the current consent (also later)."""
    data = file.file.read(settings.max_upload_bytes + 1)
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, hashlib.sha256(data).digest()),
        produce=lambda: service.add_document(session, settings=settings, keyring=keyring, actor=actor,
                                             patient_id=patient_id, consent_id=consent_id, data=data),
        guard=GUARD,
    )
    return idempotency.respond(outcome)


@router.get("/patients/{patient_id}/consents/{consent_id}/attachments/{document_id}",
            response_class=Response, summary="Download a consent form's scan")
def get_document(patient_id: uuid.UUID, consent_id: uuid.UUID, document_id: uuid.UUID, actor: ActorDep,
                 session: SessionDep, keyring: KeyringDep) -> Response:
    """The decrypted scan."""
    content_type, data = service.read_document(session, keyring=keyring, actor=actor, patient_id=patient_id,
                                               consent_id=consent_id, document_id=document_id)
    return Response(data, media_type=content_type,
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})
