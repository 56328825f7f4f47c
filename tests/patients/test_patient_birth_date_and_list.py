"""Patients API: a birth date in the future is refused by name; my list shows each patient once with unread."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from renkei.db.types import today_jst
from renkei.patients.models import Patient
from tests.factories import auth_headers, patient_data

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
