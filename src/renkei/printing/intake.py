"""Paper intake: a photographed or scanned printout is filed on the patient its signed QR code names.

Access is decided before the upload is decoded, decoding is bounded (`qr` budgets, `throttle`), and the
team members who may read the sheet hear that it awaits transcription.
"""

from __future__ import annotations

import uuid

from sqlalchemy import String, literal, or_, select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.notify import delivery as notify_delivery
from renkei.notify import service as notify_service
from renkei.patients.models import CareTeamMembership
from renkei.printing import exceptions, qr, reference, throttle
from renkei.printing.models import IntakeStatus, PaperIntake, PrintJob
from renkei.printing.schemas import PaperIntakeOut
from renkei.printing.service import PrintKit
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline import attachments as timeline_attachments

PAPER_INTAKE_EVENT = "paper_intake.awaiting_transcription"
INTAKE_AUDIT_EVENT = "paper_intake"


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
    """File a photographed or scanned paper form on the patient its QR code names, awaiting transcription.

    Nothing is stored unless every check passes; a patient the uploader may not access answers 404.
    Decoding is bounded per process and per user (`throttle`): 503 or 429 beyond.
    """
    require_intake(session, registry=kit.builder.registry, actor=actor, patient_id=patient_id)
    with throttle.GATE.admit(actor.user_id):
        ref = read_reference(keyring, content)
        job = session.get(PrintJob, ref.print_id)
        # A valid MAC over an unknown print id means a database restored to before the print: not ours.
        if job is None or job.patient_id != ref.patient_id or (job.form_id, job.form_version) != (
            ref.form_id, ref.form_version
        ):
            raise exceptions.QrInvalid()
        if ref.patient_id is None and patient_id is None:
            raise exceptions.PatientRequired()
        if ref.patient_id is not None and patient_id is not None and patient_id != ref.patient_id:
            raise exceptions.PatientMismatch()
        target = ref.patient_id or patient_id
        assert target is not None
        try:
            sheet = kit.builder.registry.get(ref.form_id, ref.form_version)
        except KeyError:
            raise exceptions.NotFileable() from None
        # Inside the gate: storing a photo decodes and re-encodes it once more.
        attachment = timeline_attachments.upload(
            session, keyring=keyring, registry=kit.builder.registry, settings=settings, actor=actor,
            patient_id=target, sheet_id=sheet.id, filename=filename, content=content,
        )
    row = PaperIntake(print_job_id=job.id, patient_id=target, form_id=sheet.id, form_version=sheet.version,
                      attachment_id=attachment.id, status=IntakeStatus.awaiting_transcription.value,
                      uploaded_by=actor.user_id)
    session.add(row)
    session.flush()
    # Only members who may read this sheet's category now: a consent can leave an office out.
    readers = notify_delivery.inbox_members(session, target, category=sheet.category, exclude=[actor.user_id])
    notified = notify_service.notify_users(
        session, user_ids=readers, kind=PAPER_INTAKE_EVENT, patient_id=target,
        refs={"intake_id": row.id, "attachment_id": attachment.id, "sheet": sheet.id},
    )
    return PaperIntakeOut(id=row.id, patient_id=target, sheet=sheet.id, sheet_version=sheet.version,
                          print_id=job.id, attachment_id=attachment.id, status=row.status,
                          uploaded_at=row.uploaded_at, notified=len(notified))
