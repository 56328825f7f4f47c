"""Consent API: versions, withdrawal, re-authentication, validation, scope per category, the signed scan."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.consent.models import Consent, ConsentDocument
from renkei.db.types import today_jst
from tests.access.support import record_lapsed_consent
from tests.factories import PASSWORD, auth_headers, make_org, make_user
from tests.sheets.examples import EXAMPLES as SHEET_EXAMPLES

TODAY = today_jst().isoformat()


def consent_body(**overrides: object) -> dict:
    body = {"given_by": "patient", "method": "written", "scope": "blanket", "obtained_on": TODAY, "password": PASSWORD}
    body.update(overrides)
    return body


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


@pytest.fixture
def nurse(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.nurse)


def test_recording_a_consent_supersedes_the_previous_version_and_keeps_the_history(client, db, world, doctor, nurse):
    path = f"/api/v1/patients/{world.patient_id}/consents"
    r = client.post(path, headers=doctor, json=consent_body(
        given_by="proxy", proxy_name="山田 一郎", proxy_relationship="長男", method="verbal",
        excluded_categories=["acp"], note="長男が同席し口頭で確認"))
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["version"], new["status"], new["proxy_name"], new["excluded_categories"]) == (
        2, "active", "山田 一郎", ["acp"])
    assert new["recorded_by_name"] == world.physician.name
    history = client.get(path, headers=nurse).json()
    assert [(c["version"], c["status"]) for c in history] == [(2, "active"), (1, "superseded")]
    row = db.get(Consent, uuid.UUID(new["id"]))
    assert "山田 一郎".encode() not in row.details_ct and "長男".encode() not in row.details_ct


def test_withdrawal_takes_effect_immediately_with_its_date_and_reason(client, db, world, doctor, nurse):
    pid = world.patient_id
    assert client.get(f"/api/v1/patients/{pid}", headers=nurse).status_code == 200
    r = client.post(f"/api/v1/patients/{pid}/consents/{world.consent_id}/withdraw", headers=nurse,
                    json={"reason": "家族と相談して撤回", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["withdrawal_reason"], r.json()["withdrawn_on"]) == (
        "withdrawn", "家族と相談して撤回", today_jst().isoformat())
    assert client.get(f"/api/v1/patients/{pid}", headers=nurse).status_code == 404
    assert client.get("/api/v1/patients", headers=nurse).json() == []
    # The registering physician still sees the history, so that a new consent can be recorded.
    assert client.get(f"/api/v1/patients/{pid}/consents", headers=doctor).json()[0]["status"] == "withdrawn"
    assert client.post(f"/api/v1/patients/{pid}/consents", headers=doctor, json=consent_body()).status_code == 201
    assert client.get(f"/api/v1/patients/{pid}", headers=nurse).status_code == 200


def test_expired_consent_stops_sharing(client, db, keyring, world, nurse):
    record_lapsed_consent(db, keyring, world.patient_id, world.physician)
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=nurse).status_code == 404


def test_consent_changes_need_the_password_again_and_failures_stay_on_record(client, db, world, doctor):
    path = f"/api/v1/patients/{world.patient_id}/consents"
    body = consent_body()
    body.pop("password")
    missing = client.post(path, headers=doctor, json=body)
    assert missing.status_code == 422 and [f["path"] for f in missing.json()["fields"]] == ["/password"]
    wrong = client.post(path, headers=doctor, json=consent_body(password="definitely-not-it"))
    assert wrong.status_code == 403 and wrong.json()["error"] == "reauthentication_failed"
    withdraw = client.post(f"{path}/{world.consent_id}/withdraw", headers=doctor,
                           json={"reason": "撤回", "password": "definitely-not-it"})
    assert withdraw.status_code == 403
    assert [c["status"] for c in client.get(path, headers=doctor).json()] == ["active"]
    denials = db.scalars(select(AuditEvent.reason).where(AuditEvent.patient_id == world.patient_id,
                                                          AuditEvent.decision == "deny")).all()
    assert denials == ["reauth_failed", "reauth_failed"]


@pytest.mark.parametrize(("overrides", "pointer"), [
    ({"given_by": "proxy"}, "/proxy_name"),
    ({"given_by": "proxy", "proxy_name": "山田 一郎"}, "/proxy_relationship"),
    ({"scope": "individual"}, "/organisation_ids"),
    ({"organisation_ids": ["00000000-0000-4000-8000-000000000000"]}, "/organisation_ids/0"),
    ({"excluded_categories": ["admission", "discharge", "emergency", "acp", "visit", "care", "message"]},
     "/excluded_categories"),
    ({"excluded_categories": ["psychic"]}, "/excluded_categories/0"),
    # Dates relative to today are worked out when the test runs: collected before midnight in Japan and run
    # after it, "tomorrow" would already be today.
    ({"obtained_on": lambda: (today_jst() + timedelta(days=1)).isoformat()}, "/obtained_on"),
    ({"valid_until": lambda: (today_jst() - timedelta(days=1)).isoformat()}, "/valid_until"),
    ({"method": "telepathy"}, "/method"),
    ({"colour": "blue"}, "/colour"),
])
def test_invalid_consent_names_the_field_and_records_nothing(client, db, world, doctor, overrides, pointer):
    overrides = {name: value() if callable(value) else value for name, value in overrides.items()}
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents", headers=doctor, json=consent_body(**overrides))
    assert r.status_code == 422
    assert pointer in [f["path"] for f in r.json()["fields"]]
    assert all(f["message_ja"] and f["message_en"] for f in r.json()["fields"])
    assert len(db.scalars(select(Consent).where(Consent.patient_id == world.patient_id)).all()) == 1


def test_only_the_current_consent_can_be_withdrawn_and_only_once(client, db, keyring, world, doctor):
    pid = world.patient_id
    v2 = client.post(f"/api/v1/patients/{pid}/consents", headers=doctor, json=consent_body()).json()
    body = {"reason": "撤回", "password": PASSWORD}
    assert client.post(f"/api/v1/patients/{pid}/consents/{world.consent_id}/withdraw", headers=doctor,
                       json=body).status_code == 409
    assert client.post(f"/api/v1/patients/{pid}/consents/{v2['id']}/withdraw", headers=doctor,
                       json=body).status_code == 200
    assert client.post(f"/api/v1/patients/{pid}/consents/{v2['id']}/withdraw", headers=doctor,
                       json=body).status_code == 409


def test_a_consent_id_of_another_patient_is_not_found(client, db, keyring, world, doctor):
    other = client.post("/api/v1/patients", headers=doctor, json={
        "name": "別人 次郎", "name_kana": "ベツジン ジロウ", "birth_date": "1940-01-01", "sex": "male",
        "team_role": "attending_physician"}).json()
    theirs = client.post(f"/api/v1/patients/{other['id']}/consents", headers=doctor, json=consent_body()).json()
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents/{theirs['id']}/withdraw", headers=doctor,
                    json={"reason": "x", "password": PASSWORD})
    assert r.status_code == 404


def test_professions_that_do_not_record_consent_cannot_change_it(client, db, settings, keyring, world):
    pharmacy = make_org(db, "試験薬局", "pharmacy")
    pharmacist = make_user(db, pharmacy, profession="pharmacist")
    client.post(f"/api/v1/patients/{world.patient_id}/team", headers=auth_headers(db, settings, keyring,
                world.physician), json={"user_id": str(pharmacist.id), "team_role": "pharmacist"})
    headers = auth_headers(db, settings, keyring, pharmacist)
    assert client.get(f"/api/v1/patients/{world.patient_id}/consents", headers=headers).status_code == 200
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents", headers=headers, json=consent_body())
    assert r.status_code == 404


def test_an_excluded_category_disappears_from_the_timeline_of_a_member_who_still_sees_the_rest(
    client, db, world, doctor, nurse,
):
    pid = world.patient_id
    posted = {}
    payloads = {"physician-visit": {"visit_date": TODAY}, "message": SHEET_EXAMPLES["message"]}
    for sheet, data in payloads.items():
        r = client.post(f"/api/v1/patients/{pid}/entries", headers=doctor,
                        json={"sheet": sheet, "data": data, "status": "final"})
        assert r.status_code == 201, r.text
        posted[sheet] = r.json()["id"]
    client.post(f"/api/v1/patients/{pid}/consents", headers=doctor, json=consent_body(excluded_categories=["message"]))
    timeline = client.get(f"/api/v1/patients/{pid}/timeline", headers=nurse)
    assert timeline.status_code == 200
    assert posted["physician-visit"] in timeline.text and posted["message"] not in timeline.text
    assert client.get(f"/api/v1/entries/{posted['message']}", headers=nurse).status_code == 404
    assert client.get(f"/api/v1/entries/{posted['physician-visit']}", headers=nurse).status_code == 200


PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\n%%EOF\n"


def test_the_signed_form_scan_is_sniffed_stored_encrypted_and_returned_intact(client, db, world, doctor, nurse):
    base = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments"
    r = client.post(base, headers=doctor, files={"file": ("scan.jpg", PDF, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "application/pdf" and r.json()["size"] == len(PDF)
    stored = db.get(ConsentDocument, uuid.UUID(r.json()["id"]))
    assert PDF not in stored.data_ct and b"Catalog" not in stored.data_ct
    back = client.get(f"{base}/{r.json()['id']}", headers=nurse)
    assert back.status_code == 200 and back.content == PDF
    assert back.headers["content-type"] == "application/pdf" and back.headers["cache-control"] == "no-store"
    listed = client.get(f"/api/v1/patients/{world.patient_id}/consents", headers=nurse).json()
    assert [d["id"] for d in listed[0]["documents"]] == [r.json()["id"]]
    exe = client.post(base, headers=doctor, files={"file": ("scan.pdf", b"MZ\x90\x00" + b"\x00" * 64,
                                                            "application/pdf")})
    assert exe.status_code == 415
