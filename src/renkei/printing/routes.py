"""Print routes (PDF and an HTML print view) and the paper-intake API."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response, UploadFile, status

from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.db.session import SessionDep
from renkei.printing import consent_forms, intake, intakes, service
from renkei.printing.dependencies import PrintKitDep
from renkei.printing.models import IntakeStatus
from renkei.printing.schemas import PaperIntakeOut
from renkei.printing.service import Output, Printout
from renkei.timeline.attachments import read_limited

router = APIRouter(tags=["printing"])
api_router = APIRouter(tags=["printing"])

_FILE_RESPONSES: dict[int | str, dict] = {200: {"content": {"application/pdf": {}, "text/html": {}}}}
# The HTML print view is a static document: no script at all, styles and the QR image inline.
_PRINT_VIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SheetId = Annotated[str, Query(max_length=40)]


def _pdf_href(request: Request) -> str:
    """The PDF of an HTML print view: the same address, relative, with .pdf for .html."""
    name = request.url.path.rsplit("/", 1)[-1].removesuffix(".html") + ".pdf"
    return f"{name}?{request.url.query}" if request.url.query else name


def _respond(printout: Printout) -> Response:
    headers = {
        "Content-Disposition": f'inline; filename="{printout.filename}"',
        "Cache-Control": "no-store",
    }
    if printout.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = _PRINT_VIEW_CSP
    return Response(printout.body, media_type=printout.media_type, headers=headers)


@router.get("/print/blank/{sheet_id}.{output}", response_class=Response, responses=_FILE_RESPONSES,
            summary="Blank sheet to fill by hand")
def print_blank(
    sheet_id: str, output: Output, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    kit: PrintKitDep, patient_id: uuid.UUID | None = None,
    version: Annotated[int | None, Query(ge=1, le=999)] = None,
) -> Response:
    """Blank form with the patient header (patient_id given) or fully blank."""
    return _respond(service.print_blank(session, kit=kit, keyring=keyring, actor=actor, sheet_id=sheet_id,
                                        version=version, patient_id=patient_id, output=output,
                                        pdf_href=_pdf_href(request)))


@router.get("/print/patients/{patient_id}/consent-form.{output}", response_class=Response,
            responses=_FILE_RESPONSES, summary="Consent form (同意書)")
def print_consent_form(
    patient_id: uuid.UUID, output: Output, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, kit: PrintKitDep, consent_id: uuid.UUID | None = None,
) -> Response:
    """同意書 with the patient header, the team's organisations and signature lines: blank, or (consent_id)
    with that recorded consent's scope ticked, to be signed and filed back through paper intake."""
    return _respond(consent_forms.print_consent_form(
        session, kit=kit, keyring=keyring, actor=actor, patient_id=patient_id, consent_id=consent_id,
        output=output, pdf_href=_pdf_href(request)))


@router.get("/print/patients/{patient_id}/consent-withdrawal.{output}", response_class=Response,
            responses=_FILE_RESPONSES, summary="Withdrawal of consent form (同意撤回書)")
def print_withdrawal_form(
    patient_id: uuid.UUID, output: Output, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, kit: PrintKitDep, consent_id: uuid.UUID | None = None,
) -> Response:
    """同意撤回書 naming the consent version withdrawn (consent_id, or the current one), with signature lines."""
    return _respond(consent_forms.print_consent_form(
        session, kit=kit, keyring=keyring, actor=actor, patient_id=patient_id, withdrawal=True,
        consent_id=consent_id, output=output, pdf_href=_pdf_href(request)))


@router.get("/print/entries/{entry_id}.{output}", response_class=Response, responses=_FILE_RESPONSES,
            summary="A timeline entry on its sheet's form")
def print_entry(
    entry_id: uuid.UUID, output: Output, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, settings: SettingsDep, kit: PrintKitDep,
) -> Response:
    """The entry laid out on its A4 form (PDF, or the HTML print view)."""
    return _respond(service.print_entry(session, kit=kit, keyring=keyring, settings=settings, actor=actor,
                                        entry_id=entry_id, output=output, pdf_href=_pdf_href(request)))


@router.get("/print/patients/{patient_id}/emergency-card.{output}", response_class=Response,
            responses=_FILE_RESPONSES, summary="Emergency information card (救急医療情報)")
def print_emergency_card(
    patient_id: uuid.UUID, output: Output, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, settings: SettingsDep, kit: PrintKitDep, format: Literal["page", "card"] = "page",
) -> Response:
    """One A4 page, or (format=card) a small card to cut out and fold, for the fridge kit."""
    return _respond(service.print_emergency_card(session, kit=kit, keyring=keyring, settings=settings, actor=actor,
                                                 patient_id=patient_id, card=format == "card", output=output,
                                                 pdf_href=_pdf_href(request)))


@api_router.post("/paper-intake", response_model=PaperIntakeOut, status_code=status.HTTP_201_CREATED,
                 summary="File a photographed or scanned paper form by its QR code")
def paper_intake(
    file: UploadFile, actor: ActorDep, session: SessionDep, keyring: KeyringDep, settings: SettingsDep,
    kit: PrintKitDep, patient_id: Annotated[uuid.UUID | None, Form()] = None,
):
    """Decode the QR, verify it, file the image on that patient's timeline awaiting transcription (a signed
    consent form: with the consent version it was printed for)."""
    content = read_limited(file.file, settings.max_upload_bytes)
    return intake.file_upload(session, kit=kit, keyring=keyring, settings=settings, actor=actor,
                              filename=file.filename or "paper", content=content, patient_id=patient_id)


@api_router.get("/patients/{patient_id}/paper-intakes", response_model=list[PaperIntakeOut],
                summary="A patient's filed paper forms")
def list_paper_intakes(patient_id: uuid.UUID, actor: ActorDep, session: SessionDep,
                       status: IntakeStatus | None = None):
    """Newest first; `status=awaiting_transcription` is the transcription queue of the patient."""
    return intakes.list_for_patient(session, actor=actor, patient_id=patient_id, status=status)
