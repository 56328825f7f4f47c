"""Care-team dates: how far a start may be back-dated or planned ahead, cancelling a planned membership,
the end date's range, and retry-safe adding and ending with an Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from renkei.db.types import today_jst
from renkei.patients.models import CareTeamMembership
from renkei.idempotency.models import IdempotencyKey
from tests.factories import auth_headers, make_org, make_user


@pytest.fixture
def pharmacist(db):
    return make_user(db, make_org(db, "みどり薬局", "pharmacy"), profession="pharmacist", name="薬局 三郎")


@pytest.fixture
def doctor(db, settings, keyring, world) -> dict[str, str]:
    return auth_headers(db, settings, keyring, world.physician)


def _team(world) -> str:
    return f"/api/v1/patients/{world.patient_id}/team"


def _add(client, headers, world, user, start=None, **extra_headers):
    body = {"user_id": str(user.id), "team_role": "pharmacist"}
    if start is not None:
        body["start_date"] = start.isoformat()
    return client.post(_team(world), headers={**headers, **extra_headers}, json=body)


def _memberships(db, user) -> int:
    return db.scalar(select(func.count()).select_from(CareTeamMembership)
                     .where(CareTeamMembership.user_id == user.id)) or 0


@pytest.mark.parametrize("days_ago", [366, 365 * 36])
def test_a_start_date_more_than_a_year_back_is_refused_naming_the_field(
    client, db, world, pharmacist, doctor, days_ago,
):
    r = _add(client, doctor, world, pharmacist, today_jst() - timedelta(days=days_ago))
    assert r.status_code == 422, r.text
    assert [(f["path"], f["message_en"]) for f in r.json()["fields"]] == [
        ("/start_date", "The start date cannot be more than a year ago")]
    assert _memberships(db, pharmacist) == 0


def test_a_start_date_exactly_a_year_back_is_accepted_and_active_today(client, world, pharmacist, doctor):
    start = today_jst() - timedelta(days=365)
    r = _add(client, doctor, world, pharmacist, start)
    assert r.status_code == 201, r.text
    assert r.json()["start_date"] == start.isoformat() and r.json()["active"] is True


def test_a_start_date_more_than_90_days_ahead_is_refused_and_90_days_is_accepted(
    client, world, pharmacist, doctor,
):
    r = _add(client, doctor, world, pharmacist, today_jst() + timedelta(days=91))
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/start_date"]
    r = _add(client, doctor, world, pharmacist, today_jst() + timedelta(days=90))
    assert r.status_code == 201, r.text
    assert r.json()["active"] is False and r.json()["cancelled"] is False


def test_a_planned_membership_can_be_cancelled_before_it_starts_and_never_gives_access(
    client, db, settings, keyring, world, pharmacist, doctor,
):
    planned = _add(client, doctor, world, pharmacist, today_jst() + timedelta(days=14)).json()
    r = client.request("DELETE", f"{_team(world)}/{planned['id']}", headers=doctor, json={"reason": "退院延期"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["cancelled"], out["active"], out["end_date"]) == (True, False, None)
    assert out["end_reason"] == "退院延期"
    history = {m["id"]: m for m in client.get(_team(world), headers=doctor).json()}
    assert history[planned["id"]]["cancelled"] is True, "a cancelled membership stays in the history"
    mine = client.get("/api/v1/patients", headers=auth_headers(db, settings, keyring, pharmacist)).json()
    assert mine == []


def test_cancelling_a_planned_membership_refuses_an_end_date(client, db, world, pharmacist, doctor):
    start = today_jst() + timedelta(days=7)
    planned = _add(client, doctor, world, pharmacist, start).json()
    r = client.request("DELETE", f"{_team(world)}/{planned['id']}", headers=doctor,
                       json={"end_date": start.isoformat()})
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/end_date"]
    db.expire_all()
    assert db.get(CareTeamMembership, uuid.UUID(planned["id"])).ended_at is None


@pytest.mark.parametrize("offset", [-3, 1], ids=["before-start", "tomorrow"])
def test_an_end_date_outside_start_to_today_is_refused(client, world, pharmacist, doctor, offset):
    start = today_jst() - timedelta(days=2)
    added = _add(client, doctor, world, pharmacist, start).json()
    end = (start if offset < 0 else today_jst()) + timedelta(days=offset)
    r = client.request("DELETE", f"{_team(world)}/{added['id']}", headers=doctor,
                       json={"end_date": end.isoformat()})
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/end_date"]


def test_a_back_dated_end_between_start_and_today_is_recorded(client, world, pharmacist, doctor):
    start = today_jst() - timedelta(days=30)
    added = _add(client, doctor, world, pharmacist, start).json()
    end = start + timedelta(days=10)
    r = client.request("DELETE", f"{_team(world)}/{added['id']}", headers=doctor,
                       json={"end_date": end.isoformat()})
    assert r.status_code == 200, r.text
    assert (r.json()["end_date"], r.json()["cancelled"]) == (end.isoformat(), False)


def test_a_retried_add_with_the_same_idempotency_key_replays_the_first_answer(
    client, db, world, pharmacist, doctor,
):
    first = _add(client, doctor, world, pharmacist, **{"Idempotency-Key": "team-add-1"})
    again = _add(client, doctor, world, pharmacist, **{"Idempotency-Key": "team-add-1"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _memberships(db, pharmacist) == 1
    without_key = _add(client, doctor, world, pharmacist)
    assert without_key.status_code == 409 and "already" in without_key.json()["detail"]


def test_an_idempotency_key_reused_for_another_member_is_refused(client, db, world, pharmacist, doctor):
    assert _add(client, doctor, world, pharmacist, **{"Idempotency-Key": "k-1"}).status_code == 201
    other = make_user(db, make_org(db, "ひがし薬局", "pharmacy"), profession="pharmacist")
    r = _add(client, doctor, world, other, **{"Idempotency-Key": "k-1"})
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/header/idempotency-key"]
    assert _memberships(db, other) == 0


def test_a_retried_end_with_the_same_idempotency_key_replays_instead_of_409(
    client, world, pharmacist, doctor,
):
    added = _add(client, doctor, world, pharmacist).json()
    url = f"{_team(world)}/{added['id']}"
    key = {**doctor, "Idempotency-Key": "team-end-1"}
    first = client.request("DELETE", url, headers=key, json={"reason": "訪問終了"})
    again = client.request("DELETE", url, headers=key, json={"reason": "訪問終了"})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert client.request("DELETE", url, headers=doctor, json={"reason": "訪問終了"}).status_code == 409


def test_an_outsider_with_an_idempotency_key_gets_404_and_no_key_is_stored(
    client, db, settings, keyring, world,
):
    outsider = auth_headers(db, settings, keyring, world.outsider)
    r = _add(client, outsider, world, world.outsider, **{"Idempotency-Key": "probe"})
    assert r.status_code == 404 and "山田" not in r.text
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)
                     .where(IdempotencyKey.user_id == world.outsider.id)) == 0
