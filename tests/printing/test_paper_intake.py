"""Paper intake: print -> photo/scan -> QR decoded and verified -> filed on the right patient, or a clear 422."""

from __future__ import annotations

import io
import os
import uuid

import pytest
import qrcode
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from renkei.notify.models import Notification
from renkei.printing import reference
from renkei.printing.models import PaperIntake, PrintJob
from renkei.printing.render import pdf_page_png
from renkei.printing.intake import PAPER_INTAKE_EVENT
from renkei.timeline.models import Attachment
from tests.factories import auth_headers, grant_consent, make_patient


@pytest.fixture
def as_user(db, settings, keyring):
    return lambda user: auth_headers(db, settings, keyring, user)


def _print(client, headers, url: str) -> bytes:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.content


def _photo(pdf: bytes) -> bytes:
    """A page as a phone might deliver it: rasterised, slightly rotated, JPEG-compressed."""
    image = Image.open(io.BytesIO(pdf_page_png(pdf, 0, dpi=150))).convert("RGB").rotate(2, expand=True,
                                                                                          fillcolor="white")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    qrcode.make(text).save(buffer)
    return buffer.getvalue()


def _upload(client, headers, content: bytes, name: str = "scan.jpg", **form):
    return client.post("/api/v1/paper-intake", files={"file": (name, content)}, data=form,
                       headers={**headers, "accept": "application/json"})


def _filed(db) -> tuple[int, int]:
    return (db.scalar(select(func.count()).select_from(PaperIntake)),
            db.scalar(select(func.count()).select_from(Attachment)))


def test_printed_form_photographed_is_filed_on_its_patient_awaiting_transcription(client, db, world, as_user):
    doctor = as_user(world.physician)
    pdf = _print(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = _upload(client, as_user(world.nurse), _photo(pdf))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["patient_id"] == str(world.patient_id) and body["sheet"] == "care-note"
    assert body["status"] == "awaiting_transcription"
    row = db.get(PaperIntake, uuid.UUID(body["id"]))
    job = db.get(PrintJob, row.print_job_id)
    assert (row.patient_id, job.patient_id, job.printed_by) == (world.patient_id, world.patient_id, world.physician.id)
    attachment = db.get(Attachment, uuid.UUID(body["attachment_id"]))
    assert attachment.patient_id == world.patient_id and attachment.uploaded_by == world.nurse.id
    told = db.scalars(select(Notification.user_id).where(Notification.kind == "paper_intake.awaiting_transcription"))
    assert set(told) == {world.physician.id} and body["notified"] == 1


def test_a_scanned_pdf_is_accepted_too(client, world, as_user):
    doctor = as_user(world.physician)
    pdf = _print(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = _upload(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 201, r.text


def test_fully_blank_form_needs_the_patient_chosen_at_intake(client, db, world, as_user):
    doctor = as_user(world.physician)
    photo = _photo(_print(client, doctor, "/print/blank/care-note.pdf"))
    r = _upload(client, doctor, photo)
    assert r.status_code == 422 and r.json()["error"] == "patient_required"
    r = _upload(client, doctor, photo, patient_id=str(world.patient_id))
    assert r.status_code == 201 and r.json()["patient_id"] == str(world.patient_id)


@pytest.mark.parametrize("case", ["forged", "foreign", "missing", "unreadable", "not_renkei"])
def test_bad_qr_is_refused_with_a_clear_error_and_nothing_is_filed(client, db, world, as_user, keyring, case):
    doctor = as_user(world.physician)
    _print(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    job = db.scalars(select(PrintJob).where(PrintJob.patient_id == world.patient_id)).one()
    ref = reference.PrintReference(job.id, world.patient_id, "care-note", 1)
    genuine = reference.sign(reference.reference_key(keyring), ref)
    content = {
        # One character of the MAC changed: the kind of edit a forger would make.
        "forged": lambda: _qr_png(genuine[:-2] + ("A" if genuine[-2] != "A" else "B") + genuine[-1]),
        # Signed with another installation's key.
        "foreign": lambda: _qr_png(reference.sign(os.urandom(32), ref)),
        "missing": lambda: _blank_png(),
        "unreadable": lambda: b"%PDF-1.7 this is not really a PDF",
        "not_renkei": lambda: _qr_png("https://example.com/some-other-code"),
    }[case]()
    before = _filed(db)
    r = _upload(client, doctor, content, "scan.png")
    assert r.status_code == 422
    body = r.json()
    expected = {"forged": "qr_invalid", "foreign": "qr_invalid", "missing": "qr_missing",
                "unreadable": "unreadable_file", "not_renkei": "qr_invalid"}[case]
    assert body["error"] == expected
    assert body["fields"][0]["message_ja"] and body["fields"][0]["message_en"]
    assert _filed(db) == before


def own_patient(db, keyring, user, **identity) -> uuid.UUID:
    """A second patient registered by `user`, with a blanket consent: the user may file records on it."""
    role = "care_manager" if user.profession == "care_manager" else "attending_physician"
    patient_id = make_patient(db, keyring, user, team_role=role, care_insurance_number=None,
                              health_insurance_number=None, **identity)
    grant_consent(db, keyring, patient_id, user)
    return patient_id


def test_qr_for_a_patient_the_uploader_may_not_access_is_404_and_nothing_is_filed(
    client, db, keyring, world, as_user,
):
    photo = _photo(_print(client, as_user(world.physician), f"/print/blank/care-note.pdf?patient_id={world.patient_id}"))
    own_patient(db, keyring, world.outsider, name="別人 太郎", name_kana="ベツジン タロウ")
    before = _filed(db)
    r = _upload(client, as_user(world.outsider), photo)
    assert r.status_code == 404
    assert _filed(db) == before


def test_chosen_patient_must_match_the_printed_one(client, db, keyring, world, as_user):
    doctor = as_user(world.physician)
    photo = _photo(_print(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}"))
    other = own_patient(db, keyring, world.physician, name="別人 太郎", name_kana="ベツジン タロウ")
    r = _upload(client, doctor, photo, patient_id=str(other))
    assert r.status_code == 422 and r.json()["error"] == "patient_mismatch"


def test_emergency_card_is_not_filed_as_a_record(client, world, as_user):
    doctor = as_user(world.physician)
    photo = _photo(_print(client, doctor, f"/print/patients/{world.patient_id}/emergency-card.pdf"))
    r = _upload(client, doctor, photo)
    assert r.status_code == 422 and r.json()["error"] == "form_not_fileable"


def _blank_png() -> bytes:
    image = Image.new("RGB", (800, 1100), "white")
    ImageDraw.Draw(image).text((50, 50), "no code here", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_intake_notifies_only_members_whose_consent_covers_the_sheet(client, db, keyring, world, as_user):
    # The patient now shares with the clinic only: the nurse's station is left out of the consent.
    grant_consent(db, keyring, world.patient_id, world.physician, scope="individual",
                  organisation_ids=[world.clinic.id])
    doctor = as_user(world.physician)
    pdf = _print(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = _upload(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 201, r.text
    assert r.json()["notified"] == 0
    told = db.scalars(select(Notification.user_id).where(Notification.kind == PAPER_INTAKE_EVENT))
    assert world.nurse.id not in set(told)
    assert client.get("/api/v1/notifications", headers=as_user(world.nurse)).json() == []
