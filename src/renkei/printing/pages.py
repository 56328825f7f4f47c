"""The paper-intake page (紙の取込み): photograph or scan a printed form, see where it was filed, and the
paper awaiting transcription on my patients' timelines with a button to transcribe each.

The upload goes to the API (`POST /api/v1/paper-intake`, from the page's script) so that a refusal rolls
the request back like any other; the page then shows the result it is sent back to (`?filed=`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep
from renkei.auth.service import Actor
from renkei.consent.models import Consent, ConsentDocument
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.patients import service as patient_service
from renkei.printing import intakes
from renkei.printing.models import PaperIntake
from renkei.sheets.dependencies import SheetsDep
from renkei.timeline.models import TimelineEntry
from renkei.timeline.pages import view_helpers
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_EVENT = "paper_intake.page"


@dataclass(frozen=True)
class Filed:
    """What the page says about the form just filed (only to someone who may read it)."""

    kind: str  # record | consent_document
    patient_id: uuid.UUID
    patient_name: str
    sheet: str
    sheet_version: int
    intake_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None
    consent_version: int | None = None
    can_transcribe: bool = False


def transcribe_href(patient_id: uuid.UUID, sheet: str, version: int, intake_id: uuid.UUID) -> str:
    """The new-entry form of the paper's sheet and version, linked to the intake it transcribes."""
    return (f"/patients/{patient_id}/entries/new?sheet={sheet}&version={version}"
            f"&paper_intake_id={intake_id}")


def _name(session: Session, keyring: Keyring, actor: Actor, patient_id: uuid.UUID) -> str:
    if not access.can(session, actor, Action.read_registration, patient_id):
        return ""
    return patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id).identity.name


def _filed_record(session: Session, keyring: Keyring, actor: Actor, intake_id: uuid.UUID) -> Filed | None:
    row = session.get(PaperIntake, intake_id)
    entry = session.get(TimelineEntry, row.entry_id) if row is not None and row.entry_id else None
    if row is None or entry is None or not access.can(session, actor, Action.read_clinical, row.patient_id,
                                                      category=entry.category):
        return None
    access.require(session, actor, Action.read_clinical, row.patient_id, category=entry.category,
                   sheet_id=row.form_id, targets=[row.id, entry.id], event=PAGE_EVENT)
    writable = access.can(session, actor, Action.write_clinical, row.patient_id, category=entry.category,
                          sheet_id=row.form_id).allowed
    return Filed("record", row.patient_id, _name(session, keyring, actor, row.patient_id), row.form_id,
                 row.form_version, intake_id=row.id, entry_id=entry.id,
                 can_transcribe=writable and row.status == "awaiting_transcription")


def _filed_consent(session: Session, keyring: Keyring, actor: Actor, document_id: uuid.UUID) -> Filed | None:
    document = session.get(ConsentDocument, document_id)
    consent = session.get(Consent, document.consent_id) if document is not None else None
    if document is None or consent is None or not access.can(session, actor, Action.read_consent,
                                                              document.patient_id):
        return None
    access.require(session, actor, Action.read_consent, document.patient_id, targets=[document.id],
                   event=PAGE_EVENT)
    return Filed("consent_document", document.patient_id, _name(session, keyring, actor, document.patient_id),
                 "consent", 1, consent_version=consent.version)


@router.get("/paper-intake")
def paper_intake_page(
    request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep, sheets: SheetsDep,
    filed: uuid.UUID | None = None, document: uuid.UUID | None = None,
) -> Response:
    """Upload a photo or scan (camera on tablets); the result; the paper awaiting transcription for my
    patients."""
    result = None
    if filed is not None:
        result = _filed_record(session, keyring, actor, filed)
    elif document is not None:
        result = _filed_consent(session, keyring, actor, document)
    awaiting = intakes.awaiting_for_me(session, keyring=keyring, actor=actor)
    patients = patient_service.list_mine(session, keyring=keyring, actor=actor)
    return render(request, "paper_intake.html", page_context(
        request, session, actor, result=result, awaiting=awaiting, patients=patients,
        transcribe_href=transcribe_href, **view_helpers(sheets),
    ))
