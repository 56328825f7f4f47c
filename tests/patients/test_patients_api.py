"""Patients API: registration, my-patients list narrowed to my teams, care-team history."""

from __future__ import annotations

from renkei.patients.models import Patient
from tests.factories import auth_headers, patient_data


def test_registering_a_patient_makes_me_the_first_team_member(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.outsider)
    r = client.post("/api/v1/patients", json=patient_data(name="新規 患者", team_role="care_manager"), headers=headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["identity"]["name"] == "新規 患者"
    team = client.get(f"/api/v1/patients/{pid}/team", headers=headers).json()
    assert [(m["user_id"], m["team_role"], m["active"]) for m in team] == [
        (str(world.outsider.id), "care_manager", True)
    ]
    assert r.headers["cache-control"] == "no-store"


def test_patient_list_shows_only_patients_whose_team_i_am_on(client, db, settings, keyring, world):
    mine = client.get("/api/v1/patients", headers=auth_headers(db, settings, keyring, world.nurse)).json()
    assert [p["id"] for p in mine] == [str(world.patient_id)]
    theirs = client.get("/api/v1/patients", headers=auth_headers(db, settings, keyring, world.outsider)).json()
    assert theirs == []


def test_outsider_gets_404_without_patient_data(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.outsider)
    for path in (f"/api/v1/patients/{world.patient_id}", f"/api/v1/patients/{world.patient_id}/team"):
        r = client.get(path, headers=headers)
        assert r.status_code == 404
        assert "山田" not in r.text and "ヤマダ" not in r.text
        assert r.json()["error"] == "not_found"


def test_ending_a_membership_keeps_history_and_removes_access(client, db, settings, keyring, world):
    doc = auth_headers(db, settings, keyring, world.physician)
    team = client.get(f"/api/v1/patients/{world.patient_id}/team", headers=doc).json()
    nurse_m = next(m for m in team if m["user_id"] == str(world.nurse.id))
    r = client.request("DELETE", f"/api/v1/patients/{world.patient_id}/team/{nurse_m['id']}", headers=doc,
                       json={"reason": "担当交代"})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["end_reason"] == "担当交代"
    team = client.get(f"/api/v1/patients/{world.patient_id}/team", headers=doc).json()
    assert len(team) == 2
    nurse = auth_headers(db, settings, keyring, world.nurse)
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=nurse).status_code == 404
    assert client.get("/api/v1/patients", headers=nurse).json() == []


def _lookup(client, headers, **body) -> list[str]:
    r = client.post("/api/v1/patients/lookup", headers=headers, json=body)
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()]


def test_updating_a_registration_re_encrypts_it_and_rebuilds_the_lookup_indexes(
    client, db, settings, keyring, world,
):
    doc = auth_headers(db, settings, keyring, world.physician)
    before = db.get(Patient, world.patient_id).identity_ct
    me = str(world.patient_id)
    assert _lookup(client, doc, name_kana="ヤマダ ハナコ", birth_date="1938-04-02") == [me]
    assert _lookup(client, doc, insurance_number="0000123456") == [me]
    changed = patient_data(name="山田 華子", name_kana="ヤマダ ハナ", care_insurance_number="0000999888")
    del changed["team_role"]
    r = client.put(f"/api/v1/patients/{world.patient_id}", headers=doc, json=changed)
    assert r.status_code == 200, r.text
    assert r.json()["identity"]["name"] == "山田 華子"
    db.expire_all()
    after = db.get(Patient, world.patient_id).identity_ct
    assert after != before and "ヤマダ".encode() not in after and "華子".encode() not in after
    read = client.get(f"/api/v1/patients/{world.patient_id}", headers=doc).json()
    assert read["identity"]["name_kana"] == "ヤマダ ハナ"
    assert _lookup(client, doc, name_kana="ヤマダ ハナコ", birth_date="1938-04-02") == []
    assert _lookup(client, doc, name_kana="やまだ はな", birth_date="1938-04-02") == [me]
    assert _lookup(client, doc, insurance_number="0000123456") == []
    assert _lookup(client, doc, insurance_number="0000999888") == [me]
    assert _lookup(client, doc, insurance_number="39123456") == [me], "the unchanged number still matches"
