"""Printing: every form goes through the access decision point, is recorded as a print job, and carries
a signed QR reference. A printout carries no more than the printer may see on screen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action, Decision
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import today_jst
from renkei.directory.models import Organisation
from renkei.errors import Forbidden
from renkei.patients import service as patient_service
from renkei.patients.models import Patient
from renkei.printing import qr, reference
from renkei.printing.forms import FormBuilder
from renkei.printing.formatting import JST, SEX_LABELS, age_on, format_date, format_datetime
from renkei.printing.models import PrintJob, PrintKind
from renkei.printing.render import FormRenderer
from renkei.sheets import service as sheets_service
from renkei.timeline import queries as timeline_queries
from renkei.timeline import service as timeline_service

EMERGENCY_SHEET = "emergency-info"
CARD_FORM = ("emergency-card", 1)


class Output(StrEnum):
    pdf = "pdf"
    html = "html"


@dataclass(frozen=True)
class Printout:
    body: bytes
    media_type: str
    filename: str  # ids only: a download name must not reveal whose form it is


@dataclass
class PrintKit:
    """What rendering needs, built once per application."""

    renderer: FormRenderer
    builder: FormBuilder


class BreakGlassPrintRefused(Forbidden):
    code = "break_glass_print_refused"
    detail_default = (
        "Emergency access allows printing the emergency card only "
        "(緊急アクセスで印刷できるのは救急医療情報カードのみです)"
    )


# -- access ------------------------------------------------------------------------------------


def require_print(
    session: Session, actor: Actor, patient_id: uuid.UUID, action: Action, *, category: str | None = None,
    sheet_id: str | None = None, event: str, targets: list[uuid.UUID] | None = None, emergency_card: bool = False,
) -> Decision:
    """The access decision for a printout; outsiders get 404.

    A break-the-glass grant is for the emergency at hand: it may print the emergency card, nothing else,
    so that a full record does not leave the building on paper under an emergency pretext.
    """
    decision = access.require(session, actor, action, patient_id, category=category, sheet_id=sheet_id,
                              targets=targets or [], event=event)
    if decision.membership_id is None and decision.grant_id is not None and not emergency_card:
        # The refusal rolls back the allowed row just queued; this denial is kept on record instead.
        audit.record(session, actor=actor, action=action.value, allowed=False,
                     reason=BreakGlassPrintRefused.code, patient_id=patient_id, targets=targets or [],
                     category=category, sheet_id=sheet_id, grant_id=decision.grant_id, event=event)
        raise BreakGlassPrintRefused()
    return decision


# -- building blocks ----------------------------------------------------------------------------


def patient_header(
    session: Session, keyring: Keyring, patient_id: uuid.UUID, *, contact: bool = True,
    on: date | None = None,
) -> dict:
    """Name, kana, birth date, age and sex for the header of every page (callers checked access);
    address and phone too when `contact` (the printer may read the registration)."""
    patient = session.get(Patient, patient_id)
    assert patient is not None
    identity = patient_service.decrypt_identity(session, keyring, patient)
    header = {
        "name": identity.name, "kana": identity.name_kana, "birth_date": format_date(identity.birth_date),
        "age": age_on(identity.birth_date, on or today_jst()), "sex": SEX_LABELS.get(identity.sex.value, ""),
    }
    if contact:
        header |= {"address": identity.address or "", "phone": identity.phone or ""}
    return header


def start_job(
    session: Session, keyring: Keyring, actor: Actor, *, kind: PrintKind, form_id: str, form_version: int,
    title: str, title_en: str, output: str, patient_id: uuid.UUID | None, entry_id: uuid.UUID | None = None,
    consent_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Record the print job and return the `doc` block of the template: titles, QR code, who and when."""
    job = PrintJob(kind=kind.value, form_id=form_id, form_version=form_version, output=output,
                   patient_id=patient_id, entry_id=entry_id, consent_id=consent_id, printed_by=actor.user_id,
                   organisation_id=actor.organisation_id)
    session.add(job)
    session.flush()
    ref = reference.PrintReference(job.id, patient_id, form_id, form_version)
    org = session.get(Organisation, actor.organisation_id)
    return {
        "form_id": form_id, "version": form_version, "title": title, "title_en": title_en,
        "qr": qr.svg_data_uri(reference.sign(reference.reference_key(keyring), ref)),
        "print_id": job.id, "print_code": print_code(job.id),
        "printed_by": actor.name, "printed_org": org.name if org else "",
        "printed_at": format_datetime(job.printed_at),
        "printed_on": format_date(job.printed_at.astimezone(JST).date()),
        "status_note": None, "variant": "blank",
        # The HTML print view marks itself as a preview and links to the PDF (`pdf_href`, set by the caller).
        "html_view": output == Output.html.value, "pdf_href": "",
    }


def print_code(print_id: uuid.UUID) -> str:
    """A short code people can read out on the phone to find a print job; not secret, not PHI."""
    return print_id.hex[:8].upper()


def render(
    kit: PrintKit, template: str, context: dict[str, Any], output: Output, *, name: str, pdf_href: str = "",
) -> Printout:
    context["doc"]["pdf_href"] = pdf_href
    html = kit.renderer.html(template, context)
    if output is Output.html:
        return Printout(html.encode("utf-8"), "text/html; charset=utf-8", f"{name}.html")
    return Printout(kit.renderer.pdf(html), "application/pdf", f"{name}.pdf")


# -- sheets ------------------------------------------------------------------------------------


def print_blank(
    session: Session, *, kit: PrintKit, keyring: Keyring, actor: Actor, sheet_id: str, version: int | None,
    patient_id: uuid.UUID | None, output: Output, pdf_href: str = "",
) -> Printout:
    """A blank sheet to fill by hand: with the patient header, or fully blank (no patient at all)."""
    sheet = sheets_service.resolve(kit.builder.registry, sheet_id, version)
    patient = None
    if patient_id is not None:
        decision = require_print(session, actor, patient_id, Action.print, category=sheet.category,
                                 sheet_id=sheet.id, event="print.blank")
        patient = patient_header(session, keyring, patient_id)
    doc = start_job(session, keyring, actor, kind=PrintKind.blank, form_id=sheet.id, form_version=sheet.version,
                    title=sheet.title, title_en=sheet.title_en, output=output.value, patient_id=patient_id)
    if patient_id is not None:
        access.disclosed(decision, [doc["print_id"]])
    else:
        # No patient, so no access decision; printing is still on record (a signed-in user, ids only).
        audit.record(session, actor=actor, action=Action.print.value, allowed=True, reason="no_patient",
                     targets=[doc["print_id"]], category=sheet.category, sheet_id=sheet.id,
                     event="print.blank")
    context = {"doc": doc, "patient": patient, "author": None, "form": kit.builder.build(sheet, None)}
    return render(kit, kit.renderer.sheet_template(sheet.id, sheet.version), context, output,
                  name=f"{sheet.id}-blank-{doc['print_code']}", pdf_href=pdf_href)


def print_sheet_data(
    session: Session, *, kit: PrintKit, keyring: Keyring, actor: Actor, patient_id: uuid.UUID, sheet_id: str,
    version: int, data: dict[str, Any], author: dict[str, Any] | None, entry_id: uuid.UUID | None,
    status_note: str | None, decision: Decision, output: Output, pdf_href: str = "",
) -> Printout:
    """A filled sheet, under the access decision the caller made for the entry the data came from."""
    sheet = sheets_service.resolve(kit.builder.registry, sheet_id, version)
    doc = start_job(session, keyring, actor, kind=PrintKind.entry, form_id=sheet.id, form_version=sheet.version,
                    title=sheet.title, title_en=sheet.title_en, output=output.value, patient_id=patient_id,
                    entry_id=entry_id)
    doc["status_note"] = status_note
    doc["variant"] = "filled"
    access.disclosed(decision, [doc["print_id"]])
    context = {"doc": doc, "patient": patient_header(session, keyring, patient_id), "author": author,
               "form": kit.builder.build(sheet, data)}
    return render(kit, kit.renderer.sheet_template(sheet.id, sheet.version), context, output,
                  name=f"{sheet.id}-{doc['print_code']}", pdf_href=pdf_href)


# -- entries -----------------------------------------------------------------------------------

STATUS_NOTES = {
    "draft": "下書き（未確定）Draft — not posted",
    "entered_in_error": "入力誤りとして取り消された記録です Entered in error — not valid",
}
# A paper entry has no structured content: the form prints empty and says where the record is.
PAPER_NOTES = {
    False: "紙で記入された記録です（原本は取り込んだ画像）・転記待ち Paper record, awaiting transcription",
    True: "紙で記入された記録です（原本は取り込んだ画像）・転記済み Paper record, transcribed",
}


def print_entry(
    session: Session, *, kit: PrintKit, keyring: Keyring, settings: Settings, actor: Actor, entry_id: uuid.UUID,
    output: Output, pdf_href: str = "",
) -> Printout:
    """A timeline entry on its sheet's form, as the printer may read it (404 otherwise)."""
    entry, _ = timeline_service.get_entry(session, keyring=keyring, settings=settings, actor=actor,
                                          entry_id=entry_id)
    decision = require_print(session, actor, entry.patient_id, Action.print, category=entry.category,
                             sheet_id=entry.sheet, targets=[entry.id], event="print.entry")
    note = STATUS_NOTES.get(entry.status)
    if note is None and entry.paper is not None:
        note = PAPER_NOTES[entry.paper.transcribed_entry_id is not None]
    if note is None and not entry.is_current:
        note = "この版は最新ではありません（訂正あり）Superseded by an amendment"
    author = {
        "name": entry.author.name, "organisation": entry.author.organisation_name,
        "at": format_datetime(entry.posted_at or entry.updated_at),
    }
    return print_sheet_data(session, kit=kit, keyring=keyring, actor=actor, patient_id=entry.patient_id,
                            sheet_id=entry.sheet, version=entry.sheet_version, data=entry.data, author=author,
                            entry_id=entry.id, status_note=note, decision=decision, output=output,
                            pdf_href=pdf_href)


# -- emergency card ------------------------------------------------------------------------------


def print_emergency_card(
    session: Session, *, kit: PrintKit, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    card: bool, output: Output, pdf_href: str = "",
) -> Printout:
    """救急医療情報キット card: DNAR, diseases, medication, allergies, contacts, the 24-hour number.

    Built from the current emergency sheet and ACP; a break-the-glass holder may print it too.
    """
    decision = require_print(session, actor, patient_id, Action.print, category="emergency",
                             sheet_id=EMERGENCY_SHEET, event="print.emergency_card", emergency_card=True)
    # A break-the-glass holder does not see the registration on screen, so not on paper either.
    contact = access.can(session, actor, Action.read_registration, patient_id).allowed
    registry = kit.builder.registry
    summary = timeline_queries.summary(session, keyring=keyring, settings=settings, actor=actor,
                                       patient_id=patient_id)
    # The summary's emergency entry is the latest *final* one (never one entered in error, whose DNAR
    # status may be the opposite of the current one), at its newest amendment.
    emergency = None
    if summary.emergency is not None:
        emergency, _ = timeline_service.get_entry(session, keyring=keyring, settings=settings, actor=actor,
                                                  entry_id=summary.emergency.entry_id)
    em_sheet = (registry.get(EMERGENCY_SHEET, emergency.sheet_version) if emergency
                else registry.latest(EMERGENCY_SHEET))
    acp = summary.acp
    acp_data = {"treatment_preferences": acp.treatment_preferences, "record_date": acp.record_date,
                "place_of_death": acp.place_of_death, "place_of_care": acp.place_of_care} if acp else None
    form_id, version = CARD_FORM
    doc = start_job(session, keyring, actor, kind=PrintKind.emergency_card, form_id=form_id, form_version=version,
                    title="救急医療情報", title_en="Emergency information card", output="card" if card else output.value,
                    patient_id=patient_id, entry_id=emergency.id if emergency else None)
    access.disclosed(decision, [doc["print_id"]])
    doc["variant"] = "filled"
    # The folded card is cut out and folded: it has no page frame to repeat, in the PDF or the browser.
    doc["html_view"] = output is Output.html and not card
    context = {
        "doc": doc, "patient": patient_header(session, keyring, patient_id, contact=contact), "author": None,
        "card": card,
        "em": kit.builder.build(em_sheet, emergency.data if emergency else {}),
        "acp": kit.builder.build(registry.latest("acp"), acp_data) if acp_data else None,
        "summary": summary, "has_emergency": emergency is not None,
        "updated": format_datetime(emergency.posted_at) if emergency and emergency.posted_at else "",
    }
    return render(kit, f"_{form_id}/{version}.html.j2", context, output,
                  name=f"{form_id}-{doc['print_code']}", pdf_href=pdf_href)
