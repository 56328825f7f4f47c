"""The summary card and the one current ACP (人生会議): a new ACP supersedes the previous, history stays."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from renkei.db.types import utcnow
from renkei.timeline.models import TimelineEntry
from tests.timeline.support import amend, etag_of, example, post, posted


def summary(client, headers, patient_id):
    r = client.get(f"/api/v1/patients/{patient_id}/summary", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


CONDITION = "回復の見込みがあるときのみ"


def acp(**preferences: str) -> dict:
    data = example("acp")
    data["treatment_preferences"].update(preferences)
    return data


def test_summary_gathers_acp_emergency_information_and_key_person(client, world, as_user, team):
    doctor = as_user(world.physician)
    current = posted(client, doctor, world.patient_id, "acp", acp())
    emergency = posted(client, as_user(world.nurse), world.patient_id, "emergency-info")
    admission = posted(client, as_user(team.care_manager), world.patient_id, "admission-info")
    card = summary(client, doctor, world.patient_id)
    assert card["acp"]["entry_id"] == current["id"]
    assert (card["acp"]["cpr"], card["acp"]["place_of_care"], card["acp"]["place_of_death"]) == (
        "refuse", "home", "home")
    assert card["emergency"]["entry_id"] == emergency["id"] and card["resuscitation_wish"] == "dnar"
    assert card["resuscitation_conflict"] is False
    assert [a["substance"] for a in card["allergies"]] == ["ペニシリン系抗菌薬", "そば"]
    assert [m["name"] for m in card["medications"]][0] == "オキシコドン徐放錠 10mg"
    assert card["attending_physician"]["phone_24h"] == "048-555-0199"
    assert card["attending_physician"]["team_members"] == ["医師 一郎（テスト在宅クリニック）"]
    assert [c["name"] for c in card["emergency_contacts"]] == ["田中 浩", "田中 美穂"]
    assert card["key_person"]["name"] == "鈴木 恵子" and card["key_person_entry_id"] == admission["id"]


def test_a_new_acp_supersedes_the_previous_one_which_stays_viewable(client, world, as_user):
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    first = posted(client, doctor, world.patient_id, "acp", acp(cpr="want"))
    assert first["acp_current"] is True and first["data"]["status"] == "current"
    second = posted(client, nurse, world.patient_id, "acp", acp(cpr="refuse"))
    card = summary(client, doctor, world.patient_id)
    assert card["acp"]["entry_id"] == second["id"] and card["acp"]["cpr"] == "refuse"
    assert card["acp"]["superseded_versions"] == 1
    old = client.get(f"/api/v1/entries/{first['id']}", headers=doctor).json()
    assert old["acp_current"] is False and old["data"]["status"] == "superseded"
    acps = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor,
                      params={"kind": "acp"}).json()["items"]
    assert [(e["id"], e["acp_current"]) for e in acps] == [(second["id"], True), (first["id"], False)]


def test_exactly_one_acp_is_current_through_amendments_and_errors(client, world, as_user):
    doctor = as_user(world.physician)
    first = posted(client, doctor, world.patient_id, "acp", acp(cpr="want"))
    second = posted(client, doctor, world.patient_id, "acp", acp(cpr="refuse"))
    amended = amend(client, doctor, first, acp(cpr="conditional", cpr_condition=CONDITION), "記載漏れ").json()
    card = summary(client, doctor, world.patient_id)
    assert card["acp"]["entry_id"] == second["id"], "amending an older ACP must not make it current"
    assert amended["acp_current"] is False

    client.post(f"/api/v1/entries/{second['id']}/entered-in-error", headers=doctor, json={"reason": "別人の記録"})
    card = summary(client, doctor, world.patient_id)
    assert card["acp"]["entry_id"] == amended["id"] and card["acp"]["cpr"] == "conditional"
    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor, params={"kind": "acp"})
    assert sum(1 for e in feed.json()["items"] if e["acp_current"]) == 1


def test_acp_status_in_the_payload_is_set_by_the_platform(client, world, as_user):
    doctor = as_user(world.physician)
    posted(client, doctor, world.patient_id, "acp", acp())
    claims_current = posted(client, doctor, world.patient_id, "acp", acp() | {"status": "superseded"})
    assert claims_current["data"]["status"] == "current" and claims_current["acp_current"] is True


def test_emergency_sheet_that_contradicts_the_acp_is_flagged(client, world, as_user):
    doctor = as_user(world.physician)
    posted(client, doctor, world.patient_id, "acp", acp(cpr="refuse"))
    emergency = example("emergency-info")
    emergency["resuscitation"]["wish"] = "full_treatment"
    posted(client, doctor, world.patient_id, "emergency-info", emergency)
    assert summary(client, doctor, world.patient_id)["resuscitation_conflict"] is True


def test_summary_of_a_patient_with_no_entries_is_empty_not_an_error(client, world, as_user):
    card = summary(client, as_user(world.nurse), world.patient_id)
    assert card["acp"] is None and card["emergency"] is None and card["allergies"] == []
    assert card["key_person"] is None


def test_latest_emergency_information_wins(client, world, as_user):
    doctor = as_user(world.physician)
    posted(client, doctor, world.patient_id, "emergency-info")
    newer = example("emergency-info")
    newer["allergies"] = [{"substance": "ヨード造影剤", "reaction": "呼吸困難"}]
    latest = posted(client, doctor, world.patient_id, "emergency-info", newer)
    card = summary(client, doctor, world.patient_id)
    assert card["emergency"]["entry_id"] == latest["id"]
    assert [a["substance"] for a in card["allergies"]] == ["ヨード造影剤"]


def test_superseded_acps_are_counted_once_each_without_amendments_or_entries_in_error(client, world, as_user):
    doctor = as_user(world.physician)
    first = posted(client, doctor, world.patient_id, "acp", acp(cpr="want"))
    amend(client, doctor, first, acp(cpr="conditional", cpr_condition=CONDITION), "条件の追記")
    current = posted(client, doctor, world.patient_id, "acp", acp(cpr="refuse"))
    amended = amend(client, doctor, current, acp(cpr="refuse", ventilation="want"), "記載の訂正").json()
    wrong = posted(client, doctor, world.patient_id, "acp", acp(cpr="want"))
    client.post(f"/api/v1/entries/{wrong['id']}/entered-in-error", headers=doctor, json={"reason": "別人の記録"})
    card = summary(client, doctor, world.patient_id)
    assert card["acp"]["entry_id"] == amended["id"]
    assert card["acp"]["superseded_versions"] == 1


def test_an_acp_dated_before_the_current_one_cannot_replace_it(client, db, world, as_user):
    doctor = as_user(world.physician)
    current = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01"))
    before = db.scalar(select(func.count()).select_from(TimelineEntry))
    r = post(client, doctor, world.patient_id, "acp", example("acp", record_date="2024-03-10"))
    assert r.status_code == 422, r.text
    [problem] = r.json()["fields"]
    assert problem["path"] == "/data/record_date" and "2025-06-01" in problem["message_ja"]
    assert db.scalar(select(func.count()).select_from(TimelineEntry)) == before
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == current["id"]


def test_an_older_acp_saved_as_a_draft_cannot_be_posted_over_the_current_one(client, world, as_user):
    doctor = as_user(world.physician)
    draft = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2024-03-10"),
                   status="draft")
    current = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01"))
    r = client.put(f"/api/v1/entries/{draft['id']}", headers={**doctor, "If-Match": etag_of(draft)},
                   json={"data": example("acp", record_date="2024-03-10"), "status": "final"})
    assert r.status_code == 422 and r.json()["fields"][0]["path"] == "/data/record_date"
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == current["id"]


def test_an_acp_of_the_same_day_or_later_replaces_the_current_one_and_old_ones_stay_amendable(
        client, world, as_user):
    doctor = as_user(world.physician)
    first = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01"))
    same_day = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01"))
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == same_day["id"]
    later = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-07-01"))
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == later["id"]
    corrected = amend(client, doctor, first, example("acp", record_date="2025-05-31"), "日付の訂正")
    assert corrected.status_code == 201, corrected.text
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == later["id"]


def test_a_new_acp_replaces_one_stamped_by_a_server_whose_clock_runs_ahead(client, db, world, as_user):
    doctor = as_user(world.physician)
    ahead = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-06-01"))
    # Another application server, its clock ten minutes fast, posted the current ACP.
    fast = utcnow() + timedelta(minutes=10)
    db.execute(update(TimelineEntry).where(TimelineEntry.record_id == uuid.UUID(ahead["record_id"]))
               .values(record_posted_at=fast))
    later = posted(client, doctor, world.patient_id, "acp", example("acp", record_date="2025-07-01"))
    assert summary(client, doctor, world.patient_id)["acp"]["entry_id"] == later["id"]
    assert datetime.fromisoformat(later["posted_at"]) > fast
