"""Paper intake: a photographed or scanned printout is filed on the patient its signed QR code names.

A sheet's form becomes a paper entry on the timeline (紙・転記待ち) showing the image to every member who
may read the sheet, and the team is told; a signed consent or withdrawal form is kept with the consent
version it was printed for. Access is decided before the upload is decoded and, once the QR code names a
patient, before anything else is said about it (a patient the uploader may not access answers 404).
Decoding is bounded (`qr` budgets, `throttle`); every refusal is audited as a denial, with its code only.
"""

from __future__ import annotations

import uuid

from sqlalchemy import String, literal, or_, select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action, Decision
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.consent import service as consent_service
from renkei.consent.models import Consent
from renkei.crypto.keyring import Keyring
from renkei.db.types import new_id
from renkei.notify import delivery as notify_delivery
from renkei.notify import service as notify_service
from renkei.patients.models import CareTeamMembership
from renkei.printing import exceptions, qr, reference, throttle
from renkei.printing.models import IntakeStatus, PaperIntake, PrintJob, PrintKind
from renkei.printing.schemas import PaperIntakeOut
from renkei.printing.service import PrintKit
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline import attachments as timeline_attachments
from renkei.timeline import service as timeline_service

PAPER_INTAKE_EVENT = "paper_intake.awaiting_transcription"
INTAKE_AUDIT_EVENT = "paper_intake"
CONSENT_KINDS = frozenset({PrintKind.consent.value, PrintKind.consent_withdrawal.value})


def _writable_sheets(registry: SheetRegistry, actor: Actor) -> list[SheetDef]:
    """The latest version of each sheet the actor's profession may write."""
    return [s for s in registry.all() if s.version == registry.latest(s.id).version
            and actor.profession in access.WRITE_MATRIX.get(s.id, frozenset())]


def require_intake(
    session: Session, *, registry: SheetRegistry, actor: Actor, patient_id: uuid.UUID | None,
) -> None:
    """Decide before any byte of the upload is decoded: the uploader must be able to file a record on the
    chosen patient (404 otherwise), or, when none is chosen, on at least one patient (403 otherwise).

    The QR code later names the sheet and patient, and filing it asks the access decision point again.
    """
    sheets = _writable_sheets(registry, actor)
    if patient_id is not None:
        if any(access.can(session, actor, Action.write_clinical, patient_id, category=s.category,
                          sheet_id=s.id) for s in sheets):
            return
        first = sheets[0] if sheets else None
        # Raises 404 and keeps the denial on record.
        access.require(session, actor, Action.write_clinical, patient_id,
                       category=first.category if first else None, sheet_id=first.id if first else None,
                       event=INTAKE_AUDIT_EVENT)
        return
    categories = sorted({s.category for s in sheets})
    if categories:
        # The write rule in SQL: the profession picked the sheets, the clause adds team, consent and category.
        member = CareTeamMembership
        covered = [access.clinical_clause(actor, member.patient_id, literal(c, String)) for c in categories]
        somewhere = session.scalar(select(member.patient_id).where(
            member.user_id == actor.user_id, member.ended_at.is_(None), or_(*covered)).limit(1))
        if somewhere is not None:
            return
    audit.record(session, actor=actor, action=Action.write_clinical.value, allowed=False,
                 reason="no_patient_to_file_on", event=INTAKE_AUDIT_EVENT)
    raise exceptions.IntakeNotAllowed()


def read_reference(keyring: Keyring, content: bytes) -> reference.PrintReference:
    """The one signed print reference on a photo, scan or PDF; a clear 422 for every way that fails."""
    try:
        found = qr.find(content)
    except qr.TooManyPages:
        raise exceptions.TooManyPages() from None
    except qr.UnreadableUpload:
        raise exceptions.UnreadableFile() from None
    if not found.texts:
        raise exceptions.QrUnreadable() if found.damaged else exceptions.QrMissing()
    key = reference.reference_key(keyring)
    refs: list[reference.PrintReference] = []
    for text in found.texts:
        try:
            refs.append(reference.verify(key, text))
        except reference.BadReference:
            continue
    if not refs:
        raise exceptions.QrInvalid()
    if len({r.print_id for r in refs}) > 1:
        raise exceptions.QrAmbiguous()
    return refs[0]


def file_upload(
    session: Session, *, kit: PrintKit, keyring: Keyring, settings: Settings, actor: Actor, filename: str,
    content: bytes, patient_id: uuid.UUID | None,
) -> PaperIntakeOut:
    """File a photographed or scanned paper form on the patient its QR code names.

    Nothing is stored unless every check passes. Decoding is bounded per process and per user (`throttle`):
    503 or 429 beyond.
    """
    require_intake(session, registry=kit.builder.registry, actor=actor, patient_id=patient_id)
    try:
        with throttle.GATE.admit(actor.user_id):
            ref = read_reference(keyring, content)
            job = session.get(PrintJob, ref.print_id)
            # A valid MAC over an unknown print id means a database restored to before the print: not ours.
            if job is None or job.patient_id != ref.patient_id or (job.form_id, job.form_version) != (
                ref.form_id, ref.form_version
            ):
                raise exceptions.QrInvalid()
            if job.kind in CONSENT_KINDS:
                return _file_consent_form(session, keyring=keyring, settings=settings, actor=actor, job=job,
                                          chosen=patient_id, content=content)
            return _file_record(session, kit=kit, keyring=keyring, settings=settings, actor=actor, job=job,
                                chosen=patient_id, filename=filename, content=content)
    except exceptions.IntakeRefused as refused:
        # Codes only: what was refused and why, never what the upload showed.
        audit.record(session, actor=actor, action=Action.write_clinical.value, allowed=False,
                     reason=refused.code, patient_id=patient_id, event=INTAKE_AUDIT_EVENT)
        raise


def _sheet_of(registry: SheetRegistry, job: PrintJob) -> SheetDef | None:
    if job.kind == PrintKind.emergency_card.value:
        return None
    try:
        return registry.get(job.form_id, job.form_version)
    except KeyError:
        return None


def _file_record(
    session: Session, *, kit: PrintKit, keyring: Keyring, settings: Settings, actor: Actor, job: PrintJob,
    chosen: uuid.UUID | None, filename: str, content: bytes,
) -> PaperIntakeOut:
    sheet = _sheet_of(kit.builder.registry, job)
    if job.patient_id is not None:
        # The patient the QR names comes first: 404 for an outsider, whatever else is wrong with the upload.
        if sheet is None:
            access.require(session, actor, Action.read_clinical, job.patient_id, category="emergency",
                           event=INTAKE_AUDIT_EVENT)
            raise exceptions.NotFileable()
        decision = _require_filing(session, actor, job.patient_id, sheet)
        if chosen is not None and chosen != job.patient_id:
            raise exceptions.PatientMismatch()
        target = job.patient_id
    else:
        if sheet is None:
            raise exceptions.NotFileable()
        if chosen is None:
            raise exceptions.PatientRequired()
        decision = _require_filing(session, actor, chosen, sheet)
        target = chosen
    # Inside the gate: storing a photo decodes and re-encodes it once more.
    attachment = timeline_attachments.upload(
        session, keyring=keyring, registry=kit.builder.registry, settings=settings, actor=actor,
        patient_id=target, sheet_id=sheet.id, filename=filename, content=content,
    )
    row = PaperIntake(id=new_id(), print_job_id=job.id, patient_id=target, form_id=sheet.id,
                      form_version=sheet.version, attachment_id=attachment.id,
                      status=IntakeStatus.awaiting_transcription.value, uploaded_by=actor.user_id)
    session.add(row)
    session.flush()
    entry = timeline_service.post_paper_entry(session, keyring=keyring, settings=settings, actor=actor,
                                              patient_id=target, sheet=sheet, attachment_id=attachment.id,
                                              paper_intake_id=row.id)
    row.entry_id = entry.id
    session.flush()
    access.disclosed(decision, [row.id, entry.id, attachment.id])
    # Only members who may read this sheet's category now: a consent can leave an office out.
    readers = notify_delivery.inbox_members(session, target, category=sheet.category, exclude=[actor.user_id])
    notified = notify_service.notify_users(
        session, user_ids=readers, kind=PAPER_INTAKE_EVENT, patient_id=target,
        refs={"intake_id": row.id, "entry_id": entry.id, "attachment_id": attachment.id, "sheet": sheet.id},
    )
    out = intake_out(row)
    out.notified = len(notified)
    return out


def _require_filing(session: Session, actor: Actor, patient_id: uuid.UUID, sheet: SheetDef) -> Decision:
    return access.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                          sheet_id=sheet.id, event=INTAKE_AUDIT_EVENT)


def _file_consent_form(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, job: PrintJob,
    chosen: uuid.UUID | None, content: bytes,
) -> PaperIntakeOut:
    """A signed 同意書 or 同意撤回書 is kept as the scan of the consent version it was printed for."""
    assert job.patient_id is not None  # consent forms are always printed for a patient
    decision = access.require(session, actor, Action.manage_consent, job.patient_id, targets=[job.id],
                              event=INTAKE_AUDIT_EVENT)
    if chosen is not None and chosen != job.patient_id:
        raise exceptions.PatientMismatch()
    consent = _consent_for(session, job)
    withdrawal = job.kind == PrintKind.consent_withdrawal.value
    if withdrawal and consent.withdrawn_at is None:
        # Filed now it would stand as one more scan of a consent in force, and nothing would withdraw it.
        raise exceptions.WithdrawalNotRecorded()
    document = consent_service.add_document(session, settings=settings, keyring=keyring, actor=actor,
                                            patient_id=job.patient_id, consent_id=consent.id, data=content,
                                            withdrawal=withdrawal)
    access.disclosed(decision, [consent.id, document.id])
    return PaperIntakeOut(id=None, kind="consent_document", patient_id=job.patient_id, sheet=job.form_id,
                          sheet_version=job.form_version, print_id=job.id, status="filed_with_consent",
                          consent_id=consent.id, consent_version=consent.version, document_id=document.id,
                          uploaded_at=document.uploaded_at, uploaded_by=actor.user_id)


def _consent_for(session: Session, job: PrintJob) -> Consent:
    """The consent version a signed form belongs to.

    A form printed for a recorded consent belongs to that version while it is still the current one (a
    consent form: and not withdrawn). A blank consent form belongs to the consent recorded after it was
    printed, as staff print it, have it signed, then record the consent from it.
    """
    current = access.current_consent(session, job.patient_id) if job.patient_id else None
    if job.consent_id is None:
        if (job.kind == PrintKind.consent.value and current is not None and current.withdrawn_at is None
                and current.recorded_at >= job.printed_at):
            return current
        raise exceptions.ConsentFormUnbound()
    if current is None or current.id != job.consent_id:
        raise exceptions.ConsentNotCurrent()
    if job.kind == PrintKind.consent.value and current.withdrawn_at is not None:
        raise exceptions.ConsentNotCurrent()
    return current


def intake_out(row: PaperIntake) -> PaperIntakeOut:
    """The API model of an intake row."""
    return PaperIntakeOut(id=row.id, patient_id=row.patient_id, sheet=row.form_id,
                          sheet_version=row.form_version, print_id=row.print_job_id, attachment_id=row.attachment_id, entry_id=row.entry_id,
                          status=row.status, transcribed_entry_id=row.transcribed_entry_id,
                          uploaded_at=row.uploaded_at, uploaded_by=row.uploaded_by)
