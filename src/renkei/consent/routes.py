"""JSON API: a patient's consents (同意), withdrawal (同意撤回) and the signed paper's scan."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, UploadFile, status
from fastapi.responses import Response

from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.consent import service
from renkei.consent.schemas import ConsentCreate, ConsentOut, DocumentOut, WithdrawIn
from renkei.db.session import SessionDep

router = APIRouter(tags=["consent"])


@router.get("/patients/{patient_id}/consents", response_model=list[ConsentOut], summary="Consent history")
def list_consents(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep):
    """Every version, newest first; the first one listed is the current consent."""
    return service.list_consents(session, keyring=keyring, actor=actor, patient_id=patient_id)


@router.post("/patients/{patient_id}/consents", response_model=ConsentOut,
             status_code=status.HTTP_201_CREATED, summary="Record a consent (new version)")
def record_consent(patient_id: uuid.UUID, body: ConsentCreate, actor: ActorDep, session: SessionDep,
                   keyring: KeyringDep, settings: SettingsDep):
    """Record who consented, how, for which organisations and categories; needs the password again."""
    return service.record(session, settings=settings, keyring=keyring, actor=actor, patient_id=patient_id,
                          data=body)


@router.post("/patients/{patient_id}/consents/{consent_id}/withdraw", response_model=ConsentOut,
             summary="Withdraw the current consent")
def withdraw_consent(patient_id: uuid.UUID, consent_id: uuid.UUID, body: WithdrawIn, actor: ActorDep,
                     session: SessionDep, keyring: KeyringDep, settings: SettingsDep):
    """Takes effect immediately; needs the password again."""
    return service.withdraw(session, settings=settings, keyring=keyring, actor=actor, patient_id=patient_id,
                            consent_id=consent_id, data=body)


@router.post("/patients/{patient_id}/consents/{consent_id}/attachments", response_model=DocumentOut,
             status_code=status.HTTP_201_CREATED, summary="Attach the signed consent form's scan")
def attach_document(patient_id: uuid.UUID, consent_id: uuid.UUID, file: UploadFile, actor: ActorDep,
                    session: SessionDep, keyring: KeyringDep, settings: SettingsDep):
    """PDF, JPEG or PNG (sniffed by content), stored encrypted."""
    data = file.file.read(settings.max_upload_bytes + 1)
    return service.add_document(session, settings=settings, keyring=keyring, actor=actor,
                                patient_id=patient_id, consent_id=consent_id, data=data)


@router.get("/patients/{patient_id}/consents/{consent_id}/attachments/{document_id}",
            response_class=Response, summary="Download a consent form's scan")
def get_document(patient_id: uuid.UUID, consent_id: uuid.UUID, document_id: uuid.UUID, actor: ActorDep,
                 session: SessionDep, keyring: KeyringDep) -> Response:
    """The decrypted scan."""
    content_type, data = service.read_document(session, keyring=keyring, actor=actor, patient_id=patient_id,
                                               consent_id=consent_id, document_id=document_id)
    return Response(data, media_type=content_type,
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})
