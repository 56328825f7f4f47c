"""Patients API: a birth date in the future is refused by name; my list shows each patient once with unread."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from renkei.audit.models import AuditEvent
from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from renkei.patients.models import Patient
from renkei.patients.schemas import MembershipIn
from tests.factories import actor_of, auth_headers, grant_consent, make_patient, patient_data

FUTURE_JA = "生年月日に未来の日付は入力できません"
FUTURE_EN = "birth date cannot be in the future"


def _birth_problem(r) -> dict:
    assert r.status_code == 422, r.text
    fields = r.json()["fields"]
    assert [f["path"] for f in fields] == ["/birth_date"]
    return fields[0]


def test_registering_a_patient_born_tomorrow_is_refused_naming_the_birth_date(client, db, settings, keyring, world):
    before = db.scalar(select(func.count()).select_from(Patient))
    tomorrow = (today_jst() + timedelta(days=1)).isoformat()
    r = client.post("/api/v1/patients", json=patient_data(name="未来 太郎", birth_date=tomorrow),
                    headers=auth_headers(db, settings, keyring, world.physician))
    problem = _birth_problem(r)
    assert problem["message_ja"] == FUTURE_JA and FUTURE_EN in problem["message_en"]
    assert "未来 太郎" not in r.text and tomorrow not in r.text
    assert db.scalar(select(func.count()).select_from(Patient)) == before


def test_correcting_a_birth_date_to_the_future_is_refused_and_the_record_is_unchanged(
    client, db, settings, keyring, world
):
    doctor = auth_headers(db, settings, keyring, world.physician)
    url = f"/api/v1/patients/{world.patient_id}"
    body = patient_data(birth_date=(today_jst() + timedelta(days=30)).isoformat())
    del body["team_role"]
    problem = _birth_problem(client.put(url, json=body, headers=doctor))
    assert problem["message_ja"] == FUTURE_JA and FUTURE_EN in problem["message_en"]
    assert client.get(url, headers=doctor).json()["identity"]["birth_date"] == "1938-04-02"


def test_today_is_a_valid_birth_date(client, db, settings, keyring, world):
    r = client.post("/api/v1/patients", json=patient_data(name="本日 誕生", birth_date=today_jst().isoformat()),
                    headers=auth_headers(db, settings, keyring, world.physician))
    assert r.status_code == 201, r.text


def test_my_patient_list_counts_the_entries_i_have_not_read(client, db, settings, keyring, world):
    nurse, doctor = (auth_headers(db, settings, keyring, u) for u in (world.nurse, world.physician))
    second = make_patient(db, keyring, world.physician, name="二人目 花子", name_kana="フタリメ ハナコ")
    grant_consent(db, keyring, second, world.physician)
    posted = [client.post(f"/api/v1/patients/{world.patient_id}/entries", headers=nurse,
                          json={"sheet": "message", "data": {"text": f"連絡{i}"}}).json() for i in range(3)]
    client.post(f"/api/v1/entries/{posted[0]['id']}/read", headers=doctor)
    listed = client.get("/api/v1/patients", headers=doctor).json()
    assert [(p["id"], p["unread_count"]) for p in listed] == [(str(second), 0), (str(world.patient_id), 2)]
    # The author has read what they wrote.
    assert [p["unread_count"] for p in client.get("/api/v1/patients", headers=nurse).json()] == [0]


def test_a_member_holding_two_roles_on_one_team_sees_the_patient_listed_once(
    client, db, settings, keyring, world
):
    patient_service.add_member(db, actor=actor_of(world.physician), patient_id=world.patient_id,
                               data=MembershipIn(user_id=world.nurse.id, team_role="care_manager",
                                                 start_date=today_jst()))
    r = client.get("/api/v1/patients", headers=auth_headers(db, settings, keyring, world.nurse))
    [listed] = r.json()
    assert listed["id"] == str(world.patient_id)
    assert listed["my_team_role"] == "visiting_nurse"
    assert listed["my_team_roles"] == ["visiting_nurse", "care_manager"]
    rows = db.scalars(select(AuditEvent).where(AuditEvent.request_id == r.headers["x-request-id"])).all()
    assert [(row.patient_id, row.reason) for row in rows] == [(world.patient_id, "listed")]
