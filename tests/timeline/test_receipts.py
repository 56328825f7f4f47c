"""Addressed sheets and 受領確認, overdue flags, 既読 and unread counts per patient."""

from __future__ import annotations

import uuid
from datetime import timedelta

from renkei.timeline import addressed
from renkei.timeline.models import TimelineEntry
from tests.factories import actor_of, grant_consent, make_patient
from tests.timeline.support import amend, example, posted


def test_discharge_sheet_sent_to_an_office_shows_who_has_and_has_not_acknowledged(client, world, as_user,
                                                                                 team):
    sent = posted(client, as_user(team.msw), world.patient_id, "discharge-info",
                  recipients=[{"organisation_id": str(team.care_office.id)},
                              {"user_id": str(world.physician.id)}])
    assert sent["awaiting_acknowledgement"] is True
    assert {(r["organisation_name"], r["user_name"], r["acknowledged_at"]) for r in sent["recipients"]} == {
        ("みどり居宅介護支援事業所", None, None), (None, "医師 一郎", None)
    }
    r = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(team.care_manager))
    assert r.status_code == 200, r.text
    seen_by_sender = client.get(f"/api/v1/entries/{sent['id']}", headers=as_user(team.msw)).json()
    status = {(r["organisation_name"] or r["user_name"]): r for r in seen_by_sender["recipients"]}
    office = status["みどり居宅介護支援事業所"]
    assert office["acknowledged_at"] is not None and office["acknowledged_by_name"] == "高橋 健一"
    assert status["医師 一郎"]["acknowledged_at"] is None
    assert seen_by_sender["awaiting_acknowledgement"] is True

    client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(world.physician))
    done = client.get(f"/api/v1/entries/{sent['id']}", headers=as_user(team.msw)).json()
    assert done["awaiting_acknowledgement"] is False


def test_member_who_is_not_an_addressee_cannot_acknowledge(client, world, as_user, team):
    sent = posted(client, as_user(team.msw), world.patient_id, "discharge-info",
                  recipients=[{"organisation_id": str(team.care_office.id)}])
    r = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(world.nurse))
    assert r.status_code == 403 and r.json()["error"] == "not_a_recipient"


def test_acknowledging_twice_keeps_the_first_time(client, world, as_user, team):
    sent = posted(client, as_user(team.msw), world.patient_id, "discharge-info",
                  recipients=[{"user_id": str(team.care_manager.id)}])
    cm = as_user(team.care_manager)
    first = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=cm).json()["recipients"][0]
    second = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=cm).json()["recipients"][0]
    assert second["acknowledged_at"] == first["acknowledged_at"]


def test_unacknowledged_addressed_sheet_is_flagged_after_the_configured_hours(client, db, settings, world, as_user,
                                                                             team):
    sent = posted(client, as_user(team.msw), world.patient_id, "discharge-info",
                  recipients=[{"organisation_id": str(team.care_office.id)}])
    assert sent["acknowledgement_overdue"] is False
    row = db.get(TimelineEntry, uuid.UUID(sent["id"]))
    row.posted_at = row.posted_at - timedelta(hours=settings.ack_overdue_hours, minutes=1)
    db.flush()
    late = client.get(f"/api/v1/entries/{sent['id']}", headers=as_user(team.msw)).json()
    assert late["acknowledgement_overdue"] is True and late["recipients"][0]["overdue"] is True
    client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(team.care_manager))
    settled = client.get(f"/api/v1/entries/{sent['id']}", headers=as_user(team.msw)).json()
    assert settled["acknowledgement_overdue"] is False


def test_amendment_is_sent_again_to_the_same_addressees(client, world, as_user, team):
    msw = as_user(team.msw)
    sent = posted(client, msw, world.patient_id, "discharge-info",
                  recipients=[{"user_id": str(team.care_manager.id)}])
    client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(team.care_manager))
    r = amend(client, msw, sent, example("discharge-info"), "退院予定日の変更")
    amended = r.json()
    assert [(x["user_name"], x["acknowledged_at"]) for x in amended["recipients"]] == [("高橋 健一", None)]
    assert amended["awaiting_acknowledgement"] is True


def test_an_older_version_cannot_be_acknowledged_in_place_of_the_current_one(client, world, as_user, team):
    msw, cm = as_user(team.msw), as_user(team.care_manager)
    sent = posted(client, msw, world.patient_id, "discharge-info",
                  recipients=[{"user_id": str(team.care_manager.id)}])
    amended = amend(client, msw, sent, example("discharge-info"), "退院予定日の変更").json()
    r = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=cm)
    assert r.status_code == 409 and r.json()["error"] == "entry_not_current"
    old = client.get(f"/api/v1/entries/{sent['id']}", headers=msw).json()
    assert [x["acknowledged_at"] for x in old["recipients"]] == [None]
    current = client.post(f"/api/v1/entries/{amended['id']}/acknowledge", headers=cm)
    assert current.status_code == 200 and current.json()["awaiting_acknowledgement"] is False


def test_an_entry_marked_entered_in_error_asks_for_no_receipt(client, world, as_user, team):
    msw = as_user(team.msw)
    sent = posted(client, msw, world.patient_id, "discharge-info",
                  recipients=[{"user_id": str(team.care_manager.id)}])
    marked = client.post(f"/api/v1/entries/{sent['id']}/entered-in-error", headers=msw,
                         json={"reason": "別の患者の記録"})
    assert marked.status_code == 200, marked.text
    r = client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(team.care_manager))
    assert r.status_code == 409 and r.json()["error"] == "entry_entered_in_error"


def test_patient_list_counts_each_sheet_awaiting_my_receipt_once(client, db, settings, world, as_user, team):
    msw = as_user(team.msw)
    both = [{"user_id": str(team.care_manager.id)}, {"organisation_id": str(team.care_office.id)}]
    first = posted(client, msw, world.patient_id, "discharge-info", recipients=both)
    second = posted(client, msw, world.patient_id, "message", {"text": "退院日が決まりました"},
                    recipients=[{"user_id": str(team.care_manager.id)}])
    same_moment = db.get(TimelineEntry, uuid.UUID(first["id"])).posted_at
    db.get(TimelineEntry, uuid.UUID(second["id"])).posted_at = same_moment
    db.flush()
    flags = addressed.patient_flags(db, settings=settings, actor=actor_of(team.care_manager))
    assert flags[world.patient_id].awaiting_my_ack == 2


def test_unread_counts_per_patient_drop_as_entries_are_read(client, db, keyring, world, as_user):
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    second = make_patient(db, keyring, world.physician, name="佐藤 一", name_kana="サトウ ハジメ")
    grant_consent(db, keyring, second, world.physician)
    a = posted(client, nurse, world.patient_id, "message", {"text": "一"})
    posted(client, nurse, world.patient_id, "message", {"text": "二"})
    counts = client.get("/api/v1/timeline/unread-counts", headers=doctor).json()
    assert counts == {str(world.patient_id): 2, str(second): 0}
    assert client.get("/api/v1/timeline/unread-counts", headers=nurse).json() == {str(world.patient_id): 0}

    assert client.post(f"/api/v1/entries/{a['id']}/read", headers=doctor).status_code == 204
    assert client.get("/api/v1/timeline/unread-counts", headers=doctor).json()[str(world.patient_id)] == 1
    unread = client.get(f"/api/v1/patients/{world.patient_id}/timeline?unread=true", headers=doctor).json()
    assert [e["data"]["text"] for e in unread["items"]] == ["二"]
    assert unread["items"][0]["read_by_me"] is False

    marked = client.post(f"/api/v1/patients/{world.patient_id}/timeline/read", headers=doctor,
                         json={"entry_ids": [e["id"] for e in unread["items"]]})
    assert marked.json() == {"marked": 1}
    assert client.get("/api/v1/timeline/unread-counts", headers=doctor).json()[str(world.patient_id)] == 0
    assert client.get("/api/v1/timeline/unread-counts", headers=as_user(world.outsider)).json() == {}


def test_entries_of_a_category_the_consent_excludes_are_neither_listed_nor_counted(client, db, keyring, world,
                                                                                   as_user):
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    posted(client, doctor, world.patient_id, "care-note")
    posted(client, doctor, world.patient_id, "message", {"text": "除外される連絡"})
    assert client.get("/api/v1/timeline/unread-counts", headers=nurse).json()[str(world.patient_id)] == 2
    # Consents are never edited: a new version excludes the category.
    grant_consent(db, keyring, world.patient_id, world.physician, excluded_categories=["message"])
    assert client.get("/api/v1/timeline/unread-counts", headers=nurse).json()[str(world.patient_id)] == 1
    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=nurse)
    assert [e["sheet"] for e in feed.json()["items"]] == ["care-note"]
    assert "除外される連絡" not in feed.text
