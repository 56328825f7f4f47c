"""JSON API: the patient timeline, entries, receipts, attachments and the summary card."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from renkei.auth.dependencies import ActorDep, CredentialsPresented, KeyringDep, SettingsDep, run_signed_in
from renkei.auth.service import Actor
from renkei.db.session import SessionDep
from renkei.sheets.dependencies import SheetsDep
from renkei.idempotency import service as idempotency
from renkei.timeline import attachments, queries, service
from renkei.timeline.schemas import (
    AmendIn,
    AttachmentOut,
    DraftUpdate,
    EnteredInErrorIn,
    EntryCreate,
    EntryOut,
    ReadsIn,
    SummaryOut,
    TimelinePage,
    TimelineQuery,
)

router = APIRouter(tags=["timeline"])

IdempotencyKeyHeader = Annotated[str | None, Header(max_length=200, description="Retry-safe POST key")]
IfMatchHeader = Annotated[str | None, Header(max_length=200, description="The entry's ETag")]


def _entry_response(outcome: idempotency.Outcome) -> JSONResponse:
    body: dict[str, Any] = outcome.body
    headers = {"ETag": f'"{body["version"]}.{body["revision"]}"'}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=outcome.status_code, headers=headers)


@router.get("/patients/{patient_id}/timeline", response_model=TimelinePage, summary="A patient's timeline",
            dependencies=[CredentialsPresented])
async def get_timeline(patient_id: uuid.UUID, query: Annotated[TimelineQuery, Query()], request: Request):
    """Posted records newest first by when each was *first* posted (an amended record keeps its place and
    says it was amended: `version` > 1, `posted_at` of the amendment), cursor-paged; filtered by sheet kind,
    author profession, JST dates of first posting (`since` ≤ `until`), unread. Unknown values: 422."""
    # The app's state read here rather than through dependencies: FastAPI's per-request cost grows with each
    # one it solves, and this is the busiest read.
    state = request.app.state
    queries.check_kinds(state.sheets, query)

    def page(session: Session, actor: Actor) -> bytes:
        return queries.timeline_json(session, keyring=state.keyring, settings=state.settings, actor=actor,
                                     patient_id=patient_id, query=query)

    # Signed in, read and committed in one worker thread (see run_signed_in), and encoded straight from the
    # page's fields (the bytes TimelinePage would give; FastAPI would validate it again).
    return Response(await run_signed_in(request, page), media_type="application/json")


@router.post("/patients/{patient_id}/entries", response_model=EntryOut, status_code=status.HTTP_201_CREATED,
             summary="Post an entry or save a draft")
def create_entry(patient_id: uuid.UUID, body: EntryCreate, request: Request, actor: ActorDep,
                 session: SessionDep, keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep,
                 idempotency_key: IdempotencyKeyHeader = None):
    """Validate against the sheet's JSON Schema, then post (or save a private draft); retry-safe."""
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        produce=lambda: service.create_entry(session, keyring=keyring, registry=sheets, settings=settings,
                                             actor=actor, patient_id=patient_id, body=body),
    )
    return _entry_response(outcome)


@router.get("/patients/{patient_id}/drafts", response_model=list[EntryOut], summary="My drafts for a patient")
def list_drafts(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                settings: SettingsDep):
    """Drafts are visible to their author only."""
    return queries.drafts(session, keyring=keyring, settings=settings, actor=actor, patient_id=patient_id)


@router.get("/patients/{patient_id}/summary", response_model=SummaryOut, summary="Current status card",
            dependencies=[CredentialsPresented])
async def get_summary(patient_id: uuid.UUID, request: Request, keyring: KeyringDep, settings: SettingsDep):
    """Current ACP, latest emergency information, allergies, medication, contacts and key person."""
    # Opened with every patient: one worker thread, as the timeline (see run_signed_in).
    return await run_signed_in(request, lambda session, actor: queries.summary(
        session, keyring=keyring, settings=settings, actor=actor, patient_id=patient_id))


@router.post("/patients/{patient_id}/timeline/read", summary="Mark several entries as read")
def mark_read_many(patient_id: uuid.UUID, body: ReadsIn, actor: ActorDep,
                   session: SessionDep) -> dict[str, int]:
    """既読 for the entries of a page the reader has seen."""
    marked = service.mark_read_many(session, actor=actor, patient_id=patient_id, entry_ids=body.entry_ids)
    return {"marked": marked}


@router.post("/patients/{patient_id}/attachments", response_model=AttachmentOut,
             status_code=status.HTTP_201_CREATED, summary="Upload a photo, scan or PDF")
def upload_attachment(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                      keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep,
                      file: Annotated[UploadFile, File()],
                      sheet: Annotated[str, Form(min_length=1, max_length=40, description="Sheet filled in")],
                      idempotency_key: IdempotencyKeyHeader = None):
    """JPEG, PNG, HEIC or PDF (sniffed from the bytes) for a sheet; 413 too large; 415 anything else."""
    content = attachments.read_limited(file.file, settings.max_upload_bytes)
    name = file.filename or ""
    digest = "\0".join((hashlib.sha256(content).hexdigest(), name, sheet))
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, digest.encode()),
        produce=lambda: attachments.upload(session, keyring=keyring, registry=sheets, settings=settings,
                                           actor=actor, patient_id=patient_id, sheet_id=sheet, filename=name,
                                           content=content),
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/attachments/{attachment_id}", summary="Download an attachment",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
def download_attachment(attachment_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                        sheets: SheetsDep):
    """The decrypted file, always as a download (never rendered inline)."""
    found = attachments.download(session, keyring=keyring, registry=sheets, actor=actor,
                                 attachment_id=attachment_id)
    return Response(found.data, media_type=found.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{found.download_name}"'})


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One entry")
def get_entry(entry_id: uuid.UUID, response: Response, actor: ActorDep, session: SessionDep,
              keyring: KeyringDep, settings: SettingsDep):
    """The entry with its receipts; opening it marks it read. ETag for drafts' If-Match."""
    view, tag = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)
    response.headers["ETag"] = tag
    return view


@router.put("/entries/{entry_id}", response_model=EntryOut, summary="Edit a draft")
def update_draft(entry_id: uuid.UUID, body: DraftUpdate, actor: ActorDep, session: SessionDep,
                 keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep,
                 if_match: IfMatchHeader = None):
    """Author only; If-Match required (428 without, 412 stale); posted entries are immutable (409)."""
    view = service.update_draft(session, keyring=keyring, registry=sheets, settings=settings, actor=actor,
                                entry_id=entry_id, body=body, if_match=if_match)
    return _entry_response(idempotency.Outcome(200, view.model_dump(mode="json"), False))


@router.post("/entries/{entry_id}/amend", response_model=EntryOut, status_code=status.HTTP_201_CREATED,
             summary="Amend a posted entry")
def amend_entry(entry_id: uuid.UUID, body: AmendIn, request: Request, actor: ActorDep, session: SessionDep,
                keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep, if_match: IfMatchHeader = None,
                idempotency_key: IdempotencyKeyHeader = None):
    """A new version with the reason (author only); the previous version stays in the history.

    `If-Match` with the ETag of the version being amended is required (428 without it, 412 when it is no
    longer the current version or the tag is weak), so two people amending at once cannot both win."""
    patient_id = service.entry_patient(session, actor=actor, entry_id=entry_id)
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=201,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        produce=lambda: service.amend(session, keyring=keyring, registry=sheets, settings=settings,
                                      actor=actor, entry_id=entry_id, body=body, if_match=if_match),
    )
    return _entry_response(outcome)


@router.post("/entries/{entry_id}/entered-in-error", response_model=EntryOut,
             summary="Mark as entered in error")
def entered_in_error(entry_id: uuid.UUID, body: EnteredInErrorIn, request: Request, actor: ActorDep,
                     session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
                     idempotency_key: IdempotencyKeyHeader = None):
    """Author only; the entry stays visible, marked, with the reason."""
    patient_id = service.entry_patient(session, actor=actor, entry_id=entry_id)
    outcome = idempotency.run(
        session, keyring=keyring, actor=actor, key=idempotency_key, patient_id=patient_id, status_code=200,
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        produce=lambda: service.mark_entered_in_error(session, keyring=keyring, settings=settings,
                                                      actor=actor, entry_id=entry_id, body=body),
    )
    return _entry_response(outcome)


@router.get("/entries/{entry_id}/history", response_model=list[EntryOut], summary="Every version of an entry")
def entry_history(entry_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                  settings: SettingsDep):
    """Amendments newest first, with their reasons."""
    return service.history(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)


@router.post("/entries/{entry_id}/read", status_code=status.HTTP_204_NO_CONTENT, summary="Mark as read")
def mark_read(entry_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """既読."""
    service.mark_read(session, actor=actor, entry_id=entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/entries/{entry_id}/acknowledge", response_model=EntryOut, summary="Acknowledge receipt")
def acknowledge(entry_id: uuid.UUID, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                settings: SettingsDep):
    """受領確認 by an addressee (the member, or any team member of the addressed organisation)."""
    return service.acknowledge(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)


@router.get("/timeline/unread-counts", response_model=dict[uuid.UUID, int],
            summary="Unread entries per patient", dependencies=[CredentialsPresented])
async def unread_counts(request: Request):
    """For the patient list: {patient_id: unread posted entries} over my care teams."""
    # Polled by the patient list: one worker thread (see run_signed_in).
    return await run_signed_in(request, lambda session, actor: queries.unread_counts(session, actor=actor))
