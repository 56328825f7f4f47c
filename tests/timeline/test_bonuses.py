"""入院時情報連携加算 deadlines and the 退院・退所加算 category derived from the contact log."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from renkei.timeline import bonuses
from renkei.timeline.models import TimelineEntry
from tests.timeline.support import amend, example, post, posted

JST = ZoneInfo("Asia/Tokyo")


def admitted(day: str) -> dict:
    return {"header": {"admission_date": day}}


@pytest.mark.parametrize(
    ("provided", "category", "state"),
    [
        (datetime(2025, 6, 1, 17, 0, tzinfo=JST), "I", "achieved"),    # the day before admission counts as (I)
        (datetime(2025, 6, 2, 23, 59, tzinfo=JST), "I", "achieved"),   # the day of admission, late evening
        (datetime(2025, 6, 3, 0, 1, tzinfo=JST), "II", "achieved"),    # the following day
        (datetime(2025, 6, 4, 23, 59, tzinfo=JST), "II", "achieved"),  # the second following day
        (datetime(2025, 6, 5, 0, 0, tzinfo=JST), None, "missed"),      # too late
    ],
)
def test_admission_bonus_category_follows_the_day_provided_in_japan_time(provided, category, state):
    bonus = bonuses.admission_bonus(admitted("2025-06-02"), provided)
    assert (bonus.category, bonus.state) == (category, state)
    assert (bonus.deadline_i, bonus.deadline_ii) == (date(2025, 6, 2), date(2025, 6, 4))


def test_admission_bonus_is_pending_until_the_second_day_after_admission():
    assert bonuses.admission_bonus(admitted("2025-06-02"), None, today=date(2025, 6, 4)).state == "pending"
    assert bonuses.admission_bonus(admitted("2025-06-02"), None, today=date(2025, 6, 5)).state == "missed"


def test_utc_evening_is_already_the_next_day_in_japan():
    provided_utc = datetime(2025, 6, 2, 15, 30, tzinfo=ZoneInfo("UTC"))  # 00:30 on 3 June in Japan
    assert bonuses.admission_bonus(admitted("2025-06-02"), provided_utc).category == "II"


@pytest.mark.parametrize(
    ("conferences", "category", "label"),
    [
        ([False], "I_a", "退院・退所加算(Ⅰ)イ"),
        ([True], "I_b", "退院・退所加算(Ⅰ)ロ"),
        ([False, False], "II_a", "退院・退所加算(Ⅱ)イ"),
        ([False, True], "II_b", "退院・退所加算(Ⅱ)ロ"),
        ([False, False, False], "II_a", "退院・退所加算(Ⅱ)イ"),
        ([False, True, False], "III", "退院・退所加算(Ⅲ)"),
    ],
)
def test_discharge_bonus_category_from_contacts_and_conferences(conferences, category, label):
    log = [{"date": "2025-06-1%d" % i, "informant_profession": "nurse", "informant_name": "佐藤",
            "conference_attended": c} for i, c in enumerate(conferences)]
    bonus = bonuses.discharge_bonus({"contact_log": log})
    assert (bonus.category, bonus.label, bonus.contacts) == (category, label, len(conferences))


def test_admission_sheet_records_when_it_was_provided_and_shows_the_deadline(client, world, as_user, team):
    today = datetime.now(JST).date()
    data = example("admission-info")
    data["header"]["admission_date"] = today.isoformat()
    data["header"]["provided_at"] = "2020-01-01T09:00:00+09:00"  # the platform sets this, not the client
    entry = posted(client, as_user(team.care_manager), world.patient_id, "admission-info", data,
                   recipients=[{"organisation_id": str(team.hospital.id)}])
    provided = datetime.fromisoformat(entry["data"]["header"]["provided_at"])
    posted_at = datetime.fromisoformat(entry["posted_at"].replace("Z", "+00:00"))
    assert abs(provided - posted_at) < timedelta(seconds=1)
    assert entry["admission_bonus"]["category"] == "I" and entry["admission_bonus"]["state"] == "achieved"
    assert entry["admission_bonus"]["label"] == "入院時情報連携加算(Ⅰ)"
    assert entry["admission_bonus"]["deadline_ii"] == (today + timedelta(days=2)).isoformat()
    assert [r["organisation_name"] for r in entry["recipients"]] == ["みどり総合病院"]


def test_admission_draft_shows_the_pending_deadline(client, world, as_user, team):
    data = example("admission-info")
    data["header"]["admission_date"] = datetime.now(JST).date().isoformat()
    draft = posted(client, as_user(team.care_manager), world.patient_id, "admission-info", data, status="draft")
    assert draft["admission_bonus"]["state"] == "pending" and draft["admission_bonus"]["provided_at"] is None
    assert "provided_at" not in draft["data"]["header"]


def test_discharge_sheet_shows_its_bonus_category(client, world, as_user, team):
    entry = posted(client, as_user(team.msw), world.patient_id, "discharge-info")
    assert entry["discharge_bonus"] == {"contacts": 2, "conference_attended": True, "category": "II_b",
                                        "label": "退院・退所加算(Ⅱ)ロ"}


def test_only_a_care_manager_writes_the_admission_sheet(client, world, as_user):
    r = post(client, as_user(world.nurse), world.patient_id, "admission-info")
    assert r.status_code in (403, 404)


def test_amending_an_admission_sheet_after_its_deadline_keeps_the_bonus_and_when_it_was_provided(
    client, db, world, as_user, team
):
    manager = as_user(team.care_manager)
    five_days_ago = datetime.now(JST) - timedelta(days=5)
    data = example("admission-info")
    data["header"]["admission_date"] = five_days_ago.date().isoformat()
    sent = posted(client, manager, world.patient_id, "admission-info", data)
    # The sheet went to the hospital on the day of admission; the record is corrected five days later.
    row = db.get(TimelineEntry, uuid.UUID(sent["id"]))
    row.posted_at = row.record_posted_at = five_days_ago
    db.flush()
    original = client.get(f"/api/v1/entries/{sent['id']}", headers=manager).json()
    bonus = original["admission_bonus"]
    assert (bonus["state"], bonus["category"]) == ("achieved", "I")

    data["wishes"]["interests"] = "庭の花の手入れ（訂正）"
    r = amend(client, manager, original, data, "趣味の記載を訂正")
    assert r.status_code == 201, r.text
    amended = r.json()
    assert (amended["admission_bonus"]["state"], amended["admission_bonus"]["category"]) == ("achieved", "I")
    provided = datetime.fromisoformat(amended["data"]["header"]["provided_at"])
    assert abs(provided - five_days_ago) < timedelta(seconds=1)
    bonus_provided = datetime.fromisoformat(amended["admission_bonus"]["provided_at"].replace("Z", "+00:00"))
    assert abs(bonus_provided - five_days_ago) < timedelta(seconds=1)
    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=manager).json()["items"]
    assert [(e["id"], e["admission_bonus"]["state"]) for e in feed] == [(amended["id"], "achieved")]
