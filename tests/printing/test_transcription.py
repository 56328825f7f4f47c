"""Transcription: print -> photo -> paper entry awaiting transcription -> the structured entry posted with the
intake's id, linked both ways (紙から転記済み), the intake marked transcribed; wrong sheet 422, twice 409."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.printing.models import PaperIntake
from tests.factories import exclude_categories
from tests.printing.support import intake, own_patient, photo, printout
from tests.timeline.support import etag_of, example, post

CARE_NOTE = {"observations": "紙の記録から転記：食事は半分摂取"}


def _awaiting(client, headers, patient_id) -> list[dict]:
    r = client.get(f"/api/v1/patients/{patient_id}/paper-intakes?status=awaiting_transcription", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_round_trip_print_photo_intake_transcribe(client, db, world, as_user, filed):
    nurse = as_user(world.nurse)
    assert [i["id"] for i in _awaiting(client, nurse, world.patient_id)] == [filed["id"]]
    r = post(client, nurse, world.patient_id, "care-note", example("care-note"), paper_intake_id=filed["id"])
    assert r.status_code == 201, r.text
    structured = r.json()
    assert structured["transcribed_from_id"] == filed["entry_id"]
    paper = client.get(f"/api/v1/entries/{filed['entry_id']}", headers=nurse).json()
    assert paper["paper"]["transcribed_entry_id"] == structured["id"]
    db.expire_all()
    row = db.get(PaperIntake, uuid.UUID(filed["id"]))
    assert (row.status, row.transcribed_entry_id) == ("transcribed", uuid.UUID(structured["id"]))
    assert _awaiting(client, nurse, world.patient_id) == []
    listed = client.get(f"/api/v1/patients/{world.patient_id}/paper-intakes", headers=nurse).json()
    assert [(i["status"], i["transcribed_entry_id"]) for i in listed] == [("transcribed", structured["id"])]
    # An amendment of the transcription keeps the link; the intake follows the current version.
    r = client.post(f"/api/v1/entries/{structured['id']}/amend", headers={**nurse, "If-Match": etag_of(structured)},
                    json={"data": CARE_NOTE, "reason": "転記の誤りを訂正"})
    assert r.status_code == 201, r.text
    amended = r.json()
    assert amended["transcribed_from_id"] == filed["entry_id"]
    db.expire_all()
    assert db.get(PaperIntake, uuid.UUID(filed["id"])).transcribed_entry_id == uuid.UUID(amended["id"])


def test_transcribing_into_another_sheet_is_422_and_nothing_is_posted(client, world, as_user, filed):
    doctor = as_user(world.physician)
    r = post(client, doctor, world.patient_id, "message", {"text": "転記"}, paper_intake_id=filed["id"])
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/sheet"]
    assert r.json()["fields"][0]["message_ja"] and len(_awaiting(client, doctor, world.patient_id)) == 1


def test_transcribing_twice_is_409(client, world, as_user, filed):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    assert post(client, nurse, world.patient_id, "care-note", CARE_NOTE,
                paper_intake_id=filed["id"]).status_code == 201
    r = post(client, doctor, world.patient_id, "care-note", CARE_NOTE, paper_intake_id=filed["id"])
    assert r.status_code == 409 and r.json()["error"] == "paper_already_transcribed"


def test_a_transcription_is_posted_not_saved_as_a_draft(client, world, as_user, filed):
    r = post(client, as_user(world.nurse), world.patient_id, "care-note", CARE_NOTE, status="draft",
             paper_intake_id=filed["id"])
    assert r.status_code == 422 and r.json()["fields"][0]["path"] == "/status"


def test_intake_of_another_patient_is_not_transcribed_here(client, db, keyring, world, as_user, filed):
    other = own_patient(db, keyring, world.physician, name="別人 太郎", name_kana="ベツジン タロウ")
    r = post(client, as_user(world.physician), other, "care-note", CARE_NOTE, paper_intake_id=filed["id"])
    assert r.status_code == 422 and r.json()["fields"][0]["path"] == "/paper_intake_id"


def test_outsider_gets_404_for_the_intake_list_and_for_transcribing(client, db, world, as_user, filed):
    outsider = as_user(world.outsider)
    r = client.get(f"/api/v1/patients/{world.patient_id}/paper-intakes", headers=outsider)
    assert r.status_code == 404 and filed["id"] not in r.text
    r = post(client, outsider, world.patient_id, "care-note", CARE_NOTE, paper_intake_id=filed["id"])
    assert r.status_code == 404
    db.expire_all()
    assert db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == world.outsider.id,
                                               AuditEvent.event == "paper_intake.list",
                                               AuditEvent.decision == "deny")).one()


def test_a_transcription_marked_entered_in_error_puts_the_paper_back_in_the_queue(client, db, world, as_user,
                                                                                   filed):
    nurse = as_user(world.nurse)
    done = post(client, nurse, world.patient_id, "care-note", CARE_NOTE, paper_intake_id=filed["id"]).json()
    r = client.post(f"/api/v1/entries/{done['id']}/entered-in-error", headers=nurse, json={"reason": "別の用紙"})
    assert r.status_code == 200
    assert [i["id"] for i in _awaiting(client, nurse, world.patient_id)] == [filed["id"]]
    assert client.get(f"/api/v1/entries/{filed['entry_id']}", headers=nurse).json()["paper"][
        "transcribed_entry_id"] is None
    assert post(client, nurse, world.patient_id, "care-note", CARE_NOTE,
                paper_intake_id=filed["id"]).status_code == 201


def test_a_paper_entry_is_transcribed_not_amended(client, world, as_user, filed):
    r = client.post(f"/api/v1/entries/{filed['entry_id']}/amend", headers=as_user(world.nurse),
                    json={"data": CARE_NOTE, "reason": "転記"})
    assert r.status_code == 409 and r.json()["error"] == "paper_entry_not_amendable"


def test_a_paper_entry_marked_entered_in_error_leaves_the_queue(client, db, world, as_user, filed):
    nurse = as_user(world.nurse)
    r = client.post(f"/api/v1/entries/{filed['entry_id']}/entered-in-error", headers=nurse,
                    json={"reason": "別の患者の用紙を撮影した"})
    assert r.status_code == 200
    assert _awaiting(client, nurse, world.patient_id) == []
    db.expire_all()
    assert db.get(PaperIntake, uuid.UUID(filed["id"])).status == "withdrawn"
    r = post(client, nurse, world.patient_id, "care-note", CARE_NOTE, paper_intake_id=filed["id"])
    assert r.status_code == 422


def test_a_paper_form_with_parts_the_consent_leaves_out_is_neither_shown_nor_transcribed(
    client, db, keyring, world, as_user,
):
    """The emergency sheet's resuscitation wish is ACP: its photographed form shows it, so a reader without
    the ACP category gets no image (404 on the file) and may not transcribe it; the rest of the team may."""
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    pdf = printout(client, doctor, f"/print/blank/emergency-info.pdf?patient_id={world.patient_id}")
    r = intake(client, nurse, photo(pdf))
    assert r.status_code == 201, r.text
    filed = r.json()
    seen = client.get(f"/api/v1/entries/{filed['entry_id']}", headers=nurse).json()["paper"]
    assert seen["image_withheld"] is False and seen["attachment_id"] == filed["attachment_id"]
    assert client.get(f"/api/v1/attachments/{filed['attachment_id']}", headers=nurse).status_code == 200

    exclude_categories(db, keyring, world.patient_id, "acp")
    withheld = client.get(f"/api/v1/entries/{filed['entry_id']}", headers=nurse).json()["paper"]
    assert withheld["image_withheld"] is True and withheld["attachment_id"] is None
    r = client.get(f"/api/v1/attachments/{filed['attachment_id']}", headers=nurse)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    page = client.get(f"/entries/{filed['entry_id']}", headers=nurse).text
    assert 'id="paper-withheld"' in page and filed["attachment_id"] not in page
    assert "transcribe-button" not in page
    r = post(client, nurse, world.patient_id, "emergency-info", example("emergency-info"),
             paper_intake_id=filed["id"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert _awaiting(client, nurse, world.patient_id)[0]["status"] == "awaiting_transcription"


def test_the_status_card_warns_of_a_newer_emergency_form_on_paper_until_it_is_transcribed(
    client, world, as_user,
):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    structured = post(client, doctor, world.patient_id, "emergency-info", example("emergency-info"))
    assert structured.status_code == 201, structured.text
    summary_url = f"/api/v1/patients/{world.patient_id}/summary"
    assert client.get(summary_url, headers=nurse).json()["paper_awaiting"] == []
    pdf = printout(client, doctor, f"/print/blank/emergency-info.pdf?patient_id={world.patient_id}")
    filed = intake(client, nurse, photo(pdf)).json()
    awaiting = client.get(summary_url, headers=nurse).json()["paper_awaiting"]
    assert [(p["entry_id"], p["sheet"]) for p in awaiting] == [(filed["entry_id"], "emergency-info")]
    page = client.get(f"/patients/{world.patient_id}/timeline", headers=nurse).text
    assert "紙で届いており、まだ転記されていません" in page and f'href="/entries/{filed["entry_id"]}"' in page
    r = post(client, doctor, world.patient_id, "emergency-info", example("emergency-info"),
             paper_intake_id=filed["id"])
    assert r.status_code == 201, r.text
    assert client.get(summary_url, headers=nurse).json()["paper_awaiting"] == []


def test_an_old_acp_form_on_paper_is_not_typed_in_over_the_current_acp(client, world, as_user):
    doctor = as_user(world.physician)
    current = post(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01")).json()
    pdf = printout(client, doctor, f"/print/blank/acp.pdf?patient_id={world.patient_id}")
    filed = intake(client, doctor, photo(pdf)).json()
    r = post(client, doctor, world.patient_id, "acp", example("acp", record_date="2024-03-10"),
             paper_intake_id=filed["id"])
    assert r.status_code == 422, r.text
    [problem] = r.json()["fields"]
    assert problem["path"] == "/data/record_date" and "2025-06-01" in problem["message_ja"]
    assert "画像" in problem["message_ja"], "the advice fits a form that is already on the timeline"
    card = client.get(f"/api/v1/patients/{world.patient_id}/summary", headers=doctor).json()
    assert card["acp"]["entry_id"] == current["id"]
    assert [i["id"] for i in _awaiting(client, doctor, world.patient_id)] == [filed["id"]]
