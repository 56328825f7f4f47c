"""Consent: record a new version, withdraw, list the history, keep the signed paper's scan.

A consent is never edited or deleted. Recording supersedes the previous version; withdrawal is
dated on the row and takes effect at once (`renkei.access` reads the current version on every decision).
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.access import reauth
from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.consent.models import (
    CATEGORIES,
    PART_ONLY_CATEGORIES,
    Consent,
    ConsentDocument,
    ConsentMethod,
    ConsentOrganisation,
    ConsentScope,
    GivenBy,
)
from renkei.consent.schemas import ConsentCreate, ConsentOut, DocumentOut, OrganisationRef, WithdrawIn
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, User
from renkei.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from renkei.notify import events as notify_events
from renkei.notify.service import Kind
from renkei.patients import keys, locks
from renkei.web import images

DETAILS_AAD = "consent.details_ct"
WITHDRAWAL_AAD = "consent.withdrawal_ct"
DOCUMENT_AAD = "consent_document.data_ct"
# Scans of the signed paper, or the tablet signature: sniffed by content, never by the declared type.
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def _binding(consent_id: uuid.UUID) -> str:
    return f"consent:{consent_id}"


def _today() -> date:
    return access.today()


def status_of(consent: Consent, on: date) -> str:
    if consent.superseded_at is not None:
        return "superseded"
    if consent.withdrawn_at is not None:
        return "withdrawn"
    if consent.valid_from > on:
        return "not_yet_valid"
    if consent.valid_until is not None and consent.valid_until < on:
        return "expired"
    return "active"


def _out(session: Session, keyring: Keyring, consent: Consent) -> ConsentOut:
    binding = _binding(consent.id)
    details = keys.open_json(session, keyring, consent.patient_id, consent.details_ct, aad=DETAILS_AAD,
                             binding=binding)
    withdrawal = (keys.open_json(session, keyring, consent.patient_id, consent.withdrawal_ct,
                                 aad=WITHDRAWAL_AAD, binding=binding) if consent.withdrawal_ct else None)
    orgs = session.execute(
        select(Organisation.id, Organisation.name)
        .join(ConsentOrganisation, ConsentOrganisation.organisation_id == Organisation.id)
        .where(ConsentOrganisation.consent_id == consent.id).order_by(Organisation.name)
    ).all()
    recorder = session.get(User, consent.recorded_by)
    recorder_org = session.get(Organisation, consent.recorded_org_id)
    documents = list(session.scalars(
        select(ConsentDocument).where(ConsentDocument.consent_id == consent.id)
        .order_by(ConsentDocument.uploaded_at)
    ))
    status = status_of(consent, _today())
    return ConsentOut(
        id=consent.id, patient_id=consent.patient_id, version=consent.version, status=status,
        awaiting_scan=(consent.method == ConsentMethod.written and not documents
                       and status not in ("superseded", "withdrawn")),
        given_by=consent.given_by, proxy_name=details.get("proxy_name"),
        proxy_relationship=details.get("proxy_relationship"), method=consent.method, scope=consent.scope,
        organisations=[OrganisationRef(id=oid, name=name) for oid, name in orgs],
        excluded_categories=sorted(access.excluded_categories(consent)), obtained_on=consent.obtained_on,
        valid_from=consent.valid_from, valid_until=consent.valid_until, note=details.get("note"),
        recorded_by=consent.recorded_by, recorded_by_name=recorder.name if recorder else "",
        recorded_organisation=recorder_org.name if recorder_org else "", recorded_at=consent.recorded_at,
        superseded_at=consent.superseded_at, withdrawn_at=consent.withdrawn_at,
        withdrawn_on=consent.withdrawn_on, withdrawn_by=consent.withdrawn_by, withdrawal_reason=withdrawal,
        documents=[DocumentOut.model_validate(d) for d in documents],
    )


def _problems(session: Session, data: ConsentCreate) -> list[FieldProblem]:
    today = _today()
    problems = []
    if data.given_by == GivenBy.proxy:
        if not (data.proxy_name or "").strip():
            problems.append(FieldProblem("/proxy_name", "代理人の氏名を入力してください", "Enter the proxy's name"))
        if not (data.proxy_relationship or "").strip():
            problems.append(FieldProblem("/proxy_relationship", "代理人の続柄を入力してください",
                                         "Enter the proxy's relationship to the patient"))
    if data.obtained_on > today:
        problems.append(FieldProblem("/obtained_on", "同意日に未来の日付は指定できません",
                                     "The consent date cannot be in the future"))
    valid_from = data.valid_from or data.obtained_on
    if valid_from > today or valid_from < data.obtained_on:
        problems.append(FieldProblem("/valid_from", "有効開始日は同意日から今日までの日付にしてください",
                                     "Valid-from must be between the consent date and today"))
    if data.valid_until is not None and (data.valid_until < valid_from or data.valid_until < today):
        problems.append(FieldProblem("/valid_until", "有効期限が過ぎた同意は記録できません",
                                     "The consent must still be valid today"))
    if data.scope == ConsentScope.individual and not data.organisation_ids:
        problems.append(FieldProblem("/organisation_ids", "個別同意では共有先の事業所を1つ以上選んでください",
                                     "An individual consent names at least one organisation"))
    known = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(data.organisation_ids))))
    for n, org_id in enumerate(data.organisation_ids):
        if org_id not in known:
            problems.append(FieldProblem(f"/organisation_ids/{n}", "該当する事業所がありません",
                                         "No such organisation"))
    if {c.value for c in data.excluded_categories} >= CATEGORIES - PART_ONLY_CATEGORIES:
        problems.append(FieldProblem("/excluded_categories", "すべての区分を除外すると共有できません",
                                     "Excluding every category leaves nothing to share"))
    return problems


def _check_withdrawable(consent: Consent) -> None:
    if consent.superseded_at is not None:
        raise Conflict("Only the current consent can be withdrawn")
    if consent.withdrawn_at is not None:
        raise Conflict("This consent has already been withdrawn")


def list_consents(
    session: Session, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
) -> list[ConsentOut]:
    """Every version, newest first: the history is visible to the team."""
    decision = access.require(session, actor, Action.read_consent, patient_id)
    rows = list(session.scalars(
        select(Consent).where(Consent.patient_id == patient_id).order_by(Consent.version.desc())
    ))
    access.disclosed(decision, [c.id for c in rows])
    return [_out(session, keyring, c) for c in rows]


def record(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    data: ConsentCreate,
) -> ConsentOut:
    """Record a new consent version; it supersedes the current one at once."""
    decision = access.require(session, actor, Action.manage_consent, patient_id, event="consent.record")
    problems = _problems(session, data)
    if problems:
        raise InvalidInput(fields=problems)
    reauth.reauthenticate(session, settings=settings, keyring=keyring, actor=actor, password=data.password,
                          otp=data.otp, action=Action.manage_consent, patient_id=patient_id)
    locks.lock_patient(session, patient_id)
    previous = access.current_consent(session, patient_id)
    newest = session.scalar(select(func.max(Consent.version)).where(Consent.patient_id == patient_id))
    version = (newest or 0) + 1
    proxy = data.given_by == GivenBy.proxy
    consent = Consent(
        id=uuid.uuid4(), patient_id=patient_id, version=version, given_by=data.given_by.value,
        method=data.method.value, scope=data.scope.value,
        excluded_categories=",".join(sorted({c.value for c in data.excluded_categories})),
        obtained_on=data.obtained_on, valid_from=data.valid_from or data.obtained_on,
        valid_until=data.valid_until,
        details_ct=b"", recorded_by=actor.user_id, recorded_org_id=actor.organisation_id,
    )
    consent.details_ct = keys.seal_json(
        session, keyring, patient_id, aad=DETAILS_AAD, binding=_binding(consent.id),
        value={
            "proxy_name": data.proxy_name.strip() if proxy and data.proxy_name else None,
            "proxy_relationship": (data.proxy_relationship.strip()
                                   if proxy and data.proxy_relationship else None),
            "note": data.note,
        },
    )
    session.add(consent)
    session.flush()
    session.add_all(ConsentOrganisation(consent_id=consent.id, organisation_id=org_id)
                    for org_id in dict.fromkeys(data.organisation_ids))
    if previous is not None:
        previous.superseded_at, previous.superseded_by = utcnow(), consent.id
    session.flush()
    access.disclosed(decision, [consent.id])
    notify_events.consent_changed(session, kind=Kind.consent_recorded, patient_id=patient_id,
                                  consent_id=consent.id, actor=actor)
    return _out(session, keyring, consent)


def withdraw(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    consent_id: uuid.UUID, data: WithdrawIn,
) -> ConsentOut:
    """Withdraw the current consent (同意撤回); sharing stops with the next request."""
    access.require(session, actor, Action.manage_consent, patient_id, targets=[consent_id],
                   event="consent.withdraw")
    consent = session.get(Consent, consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise NotFound()
    _check_withdrawable(consent)
    withdrawn_on = data.withdrawn_on or _today()
    if withdrawn_on > _today() or withdrawn_on < consent.obtained_on:
        raise InvalidInput(fields=[FieldProblem(
            "/withdrawn_on", "撤回日は同意日から今日までの日付にしてください",
            "The withdrawal date must be between the consent date and today",
        )])
    reauth.reauthenticate(session, settings=settings, keyring=keyring, actor=actor, password=data.password,
                          otp=data.otp, action=Action.manage_consent, patient_id=patient_id)
    locks.lock_patient(session, patient_id)
    # Checked again as committed now: a new version recorded (or a withdrawal) while the password was being
    # checked would otherwise be overwritten by a withdrawal of the consent it already replaced.
    consent = session.get(Consent, consent.id, populate_existing=True)
    _check_withdrawable(consent)
    consent.withdrawn_at, consent.withdrawn_on, consent.withdrawn_by = utcnow(), withdrawn_on, actor.user_id
    consent.withdrawal_ct = keys.seal_json(session, keyring, patient_id, aad=WITHDRAWAL_AAD,
                                           binding=_binding(consent.id), value=data.reason.strip())
    session.flush()
    notify_events.consent_changed(session, kind=Kind.consent_withdrawn, patient_id=patient_id,
                                  consent_id=consent.id, actor=actor)
    return _out(session, keyring, consent)


def _sniff(data: bytes) -> str:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    raise UnsupportedMediaType("Only PDF, JPEG or PNG scans are accepted (PDF・JPEG・PNGのみ)")


def _consent_of(session: Session, patient_id: uuid.UUID, consent_id: uuid.UUID) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise NotFound()
    return consent


def _document_bytes(session: Session, keyring: Keyring, doc: ConsentDocument) -> bytes:
    return keys.open_bytes(session, keyring, doc.patient_id, doc.data_ct, aad=DOCUMENT_AAD,
                           binding=f"consent_document:{doc.id}")


def add_document(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    consent_id: uuid.UUID, data: bytes, withdrawal: bool = False,
) -> DocumentOut:
    """Keep the scan of the signed consent form (or the tablet signature), encrypted; later too, for a
    written consent recorded before its paper was scanned. The same file sent again is kept once.
    `withdrawal`: the signed withdrawal form (同意撤回書), kept with the version it withdrew."""
    decision = access.require(session, actor, Action.manage_consent, patient_id, targets=[consent_id],
                              event="consent.document")
    consent = _consent_of(session, patient_id, consent_id)
    if withdrawal:
        if consent.withdrawn_at is None:
            raise Conflict("Record the withdrawal before filing its signed form", fields=[FieldProblem(
                "/consent_id", "撤回を記録してから同意撤回書を添付してください",
                "Record the withdrawal before attaching the signed withdrawal form")])
    elif consent.superseded_at is not None or consent.withdrawn_at is not None:
        # A scan belongs to the version the patient signed; filing it under an ended one would misstate it.
        raise Conflict("Scans are attached to the current, unwithdrawn consent only", fields=[FieldProblem(
            "/consent_id", "撤回済み・差し替え済みの同意には署名済み同意書を添付できません。現在の同意に添付してください",
            "A withdrawn or superseded consent takes no scan: attach it to the current consent")])
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge()
    if not data:
        raise InvalidInput(fields=[FieldProblem("/file", "ファイルが空です", "The file is empty")])
    content_type = _sniff(data)
    if content_type in images.FORMATS:
        # A phone photo of the signed form carries the GPS position of the patient's home.
        data = images.strip_metadata(data, content_type)
    for existing in session.scalars(select(ConsentDocument).where(ConsentDocument.consent_id == consent_id)):
        if existing.size == len(data) and _document_bytes(session, keyring, existing) == data:
            access.disclosed(decision, [existing.id])
            return DocumentOut.model_validate(existing)
    doc = ConsentDocument(id=uuid.uuid4(), consent_id=consent_id, patient_id=patient_id,
                          content_type=content_type, size=len(data), data_ct=b"", uploaded_by=actor.user_id)
    doc.data_ct = keys.seal_bytes(session, keyring, patient_id, aad=DOCUMENT_AAD,
                                  binding=f"consent_document:{doc.id}", data=data)
    session.add(doc)
    session.flush()
    access.disclosed(decision, [doc.id])
    return DocumentOut.model_validate(doc)


def read_document(
    session: Session, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID, consent_id: uuid.UUID,
    document_id: uuid.UUID,
) -> tuple[str, bytes]:
    """The decrypted scan and its sniffed content type."""
    access.require(session, actor, Action.read_consent, patient_id, targets=[document_id])
    doc = session.get(ConsentDocument, document_id)
    if doc is None or doc.consent_id != consent_id or doc.patient_id != patient_id:
        raise NotFound()
    return doc.content_type, _document_bytes(session, keyring, doc)
