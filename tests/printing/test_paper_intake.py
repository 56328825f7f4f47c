"""Paper intake: print -> photo/scan -> QR decoded and verified -> filed on the right patient's timeline as a
paper entry awaiting transcription, or a clear 422 (audited); a patient the uploader may not access is 404."""

from __future__ import annotations

import io
import json
import os
import uuid

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from renkei.audit.models import AuditEvent
from renkei.notify.models import Notification
from renkei.printing import reference
from renkei.printing.intake import PAPER_INTAKE_EVENT
from renkei.printing.models import PaperIntake, PrintJob
from renkei.timeline.models import Attachment, TimelineEntry
from tests.factories import grant_consent
from tests.printing.support import intake, own_patient, photo, printout, qr_png, side_by_side

__all__ = ["own_patient"]  # imported by the other intake tests


def _filed(db) -> tuple[int, int, int]:
    return (db.scalar(select(func.count()).select_from(PaperIntake)),
            db.scalar(select(func.count()).select_from(Attachment)),
            db.scalar(select(func.count()).select_from(TimelineEntry)))


def test_printed_form_photographed_is_filed_on_its_patient_timeline_awaiting_transcription(
    client, db, world, as_user,
):
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    pdf = printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = intake(client, nurse, photo(pdf))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["patient_id"] == str(world.patient_id) and body["sheet"] == "care-note"
    assert body["status"] == "awaiting_transcription" and body["kind"] == "record"
    row = db.get(PaperIntake, uuid.UUID(body["id"]))
    job = db.get(PrintJob, row.print_job_id)
    assert (row.patient_id, job.patient_id, job.printed_by) == (world.patient_id, world.patient_id,
                                                                 world.physician.id)
    # The team sees a paper entry of the sheet on the timeline, and opens it and its image.
    timeline = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).json()["items"]
    paper = next(e for e in timeline if e["id"] == body["entry_id"])
    assert (paper["sheet"], paper["sheet_version"], paper["status"]) == ("care-note", 1, "final")
    assert paper["data"] == {} and paper["author"]["user_id"] == str(world.nurse.id)
    assert paper["paper"] == {"intake_id": body["id"], "attachment_id": body["attachment_id"],
                              "content_type": "image/jpeg", "transcribed_entry_id": None,
                              "image_withheld": False}
    assert client.get(f"/api/v1/entries/{body['entry_id']}", headers=doctor).status_code == 200
    assert client.get(f"/api/v1/attachments/{body['attachment_id']}", headers=doctor).status_code == 200
    told = db.scalars(select(Notification).where(Notification.kind == PAPER_INTAKE_EVENT)).all()
    assert [n.user_id for n in told] == [world.physician.id] and body["notified"] == 1
    # The notification leads to the entry the notified member can open.
    assert json.loads(told[0].refs)["entry_id"] == body["entry_id"]


def test_a_paper_emergency_sheet_awaiting_transcription_does_not_replace_the_current_status(
    client, world, as_user,
):
    doctor = as_user(world.physician)
    client.post(f"/api/v1/patients/{world.patient_id}/entries", headers=doctor,
                json={"sheet": "emergency-info", "data": {"resuscitation": {"wish": "dnar"}}})
    pdf = printout(client, doctor, f"/print/blank/emergency-info.pdf?patient_id={world.patient_id}")
    assert intake(client, doctor, pdf, "scan.pdf").status_code == 201
    summary = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=doctor).json()
    assert summary["resuscitation_wish"] == "dnar"


def test_a_scanned_pdf_is_accepted_too(client, world, as_user):
    doctor = as_user(world.physician)
    pdf = printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = intake(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 201, r.text


def test_fully_blank_form_needs_the_patient_chosen_at_intake(client, db, world, as_user):
    doctor = as_user(world.physician)
    image = photo(printout(client, doctor, "/print/blank/care-note.pdf"))
    r = intake(client, doctor, image)
    assert r.status_code == 422 and r.json()["error"] == "patient_required"
    r = intake(client, doctor, image, patient_id=str(world.patient_id))
    assert r.status_code == 201 and r.json()["patient_id"] == str(world.patient_id)


def _genuine(client, db, keyring, world, doctor) -> tuple[reference.PrintReference, str]:
    printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    job = db.scalars(select(PrintJob).where(PrintJob.patient_id == world.patient_id)
                     .order_by(PrintJob.printed_at.desc())).first()
    ref = reference.PrintReference(job.id, world.patient_id, "care-note", 1)
    return ref, reference.sign(reference.reference_key(keyring), ref)


@pytest.mark.parametrize("case", ["forged", "foreign", "missing", "damaged", "unreadable", "not_renkei"])
def test_bad_qr_is_refused_with_a_clear_error_audited_and_nothing_is_filed(
    client, db, keyring, world, as_user, case,
):
    doctor = as_user(world.physician)
    ref, genuine = _genuine(client, db, keyring, world, doctor)
    content = {
        # One character of the MAC changed: the kind of edit a forger would make.
        "forged": lambda: qr_png(genuine[:-2] + ("A" if genuine[-2] != "A" else "B") + genuine[-1]),
        # Signed with another installation's key.
        "foreign": lambda: qr_png(reference.sign(os.urandom(32), ref)),
        "missing": lambda: _blank_png(),
        # A stain over the code: located, but beyond what error correction recovers.
        "damaged": lambda: qr_png(genuine, damaged=True),
        "unreadable": lambda: b"%PDF-1.7 this is not really a PDF",
        "not_renkei": lambda: qr_png("https://example.com/some-other-code"),
    }[case]()
    before = _filed(db)
    r = intake(client, doctor, content, "scan.png")
    assert r.status_code == 422
    body = r.json()
    expected = {"forged": "qr_invalid", "foreign": "qr_invalid", "missing": "qr_missing", "damaged": "qr_unreadable",
                "unreadable": "unreadable_file", "not_renkei": "qr_invalid"}[case]
    assert body["error"] == expected
    assert body["fields"][0]["message_ja"] and body["fields"][0]["message_en"]
    assert _filed(db) == before
    db.expire_all()
    denial = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == world.physician.id,
                                                 AuditEvent.event == "paper_intake")).one()
    # A denial with its code only: no patient (none was verified), no ids from the upload.
    assert (denial.action, denial.decision, denial.reason) == ("write_clinical", "deny", expected)
    assert denial.patient_id is None and denial.target_ids == "[]"


def test_two_different_printouts_in_one_photo_are_refused_as_ambiguous(client, db, keyring, world, as_user):
    doctor = as_user(world.physician)
    _, first = _genuine(client, db, keyring, world, doctor)
    _, second = _genuine(client, db, keyring, world, doctor)
    assert first != second
    before = _filed(db)
    r = intake(client, doctor, side_by_side(qr_png(first), qr_png(second)), "two.png")
    assert r.status_code == 422 and r.json()["error"] == "qr_ambiguous"
    assert _filed(db) == before
    # The same printout photographed twice (two pages of one form) is not ambiguous.
    assert intake(client, doctor, side_by_side(qr_png(first), qr_png(first)), "one.png").status_code == 201


def test_qr_for_a_patient_the_uploader_may_not_access_is_404_and_nothing_is_filed(
    client, db, keyring, world, as_user,
):
    image = photo(printout(client, as_user(world.physician),
                           f"/print/blank/care-note.pdf?patient_id={world.patient_id}"))
    mine = own_patient(db, keyring, world.outsider, name="別人 太郎", name_kana="ベツジン タロウ")
    before = _filed(db)
    outsider = as_user(world.outsider)
    r = intake(client, outsider, image)
    assert r.status_code == 404 and "山田" not in r.text
    # Choosing a patient the outsider may access does not turn the 404 into "patient mismatch".
    r = intake(client, outsider, image, patient_id=str(mine))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert _filed(db) == before


def test_chosen_patient_must_match_the_printed_one(client, db, keyring, world, as_user):
    doctor = as_user(world.physician)
    image = photo(printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}"))
    other = own_patient(db, keyring, world.physician, name="別人 太郎", name_kana="ベツジン タロウ")
    r = intake(client, doctor, image, patient_id=str(other))
    assert r.status_code == 422 and r.json()["error"] == "patient_mismatch"


def test_emergency_card_is_not_filed_as_a_record(client, world, as_user):
    doctor = as_user(world.physician)
    image = photo(printout(client, doctor, f"/print/patients/{world.patient_id}/emergency-card.pdf"))
    r = intake(client, doctor, image)
    assert r.status_code == 422 and r.json()["error"] == "form_not_fileable"


def test_a_successful_intake_is_audited_as_a_paper_intake_event(client, db, world, as_user):
    nurse = as_user(world.nurse)
    pdf = printout(client, nurse, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    body = intake(client, nurse, pdf, "scan.pdf").json()
    db.expire_all()
    row = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == world.nurse.id,
                                              AuditEvent.event == "paper_intake")).one()
    assert (row.action, row.decision, row.patient_id) == ("write_clinical", "allow", world.patient_id)
    assert {body["id"], body["entry_id"], body["attachment_id"]} <= set(json.loads(row.target_ids))


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
    pdf = printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = intake(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 201, r.text
    assert r.json()["notified"] == 0
    told = db.scalars(select(Notification.user_id).where(Notification.kind == PAPER_INTAKE_EVENT))
    assert world.nurse.id not in set(told)
    nurse = as_user(world.nurse)
    assert client.get("/api/v1/notifications", headers=nurse).json() == []
    assert client.get(f"/api/v1/attachments/{r.json()['attachment_id']}", headers=nurse).status_code == 404


def test_a_category_the_consent_excludes_hides_the_paper_from_that_office(client, db, keyring, settings, world,
                                                                           as_user):
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    pdf = printout(client, doctor, f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    body = intake(client, doctor, pdf, "scan.pdf").json()
    assert client.get(f"/api/v1/attachments/{body['attachment_id']}", headers=nurse).status_code == 200
    grant_consent(db, keyring, world.patient_id, world.physician, excluded_categories=["care"], settings=settings)
    assert client.get(f"/api/v1/attachments/{body['attachment_id']}", headers=nurse).status_code == 404
    assert client.get(f"/api/v1/entries/{body['entry_id']}", headers=nurse).status_code == 404
    listed = client.get(f"/api/v1/patients/{world.patient_id}/paper-intakes", headers=nurse).json()
    assert listed == []
