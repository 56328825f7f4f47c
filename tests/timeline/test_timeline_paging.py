"""The timeline feed: stable cursor paging, filters by sheet kind, author profession, dates (JST) and unread."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from renkei.timeline.models import TimelineEntry
from tests.timeline.support import amend, posted

JST = ZoneInfo("Asia/Tokyo")


def feed(client, headers, patient_id, **params):
    r = client.get(f"/api/v1/patients/{patient_id}/timeline", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_cursor_pages_walk_every_entry_once_newest_first(client, db, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    ids = [posted(client, nurse, world.patient_id, "message", {"text": f"連絡{i}"})["id"] for i in range(7)]
    same_moment = db.get(TimelineEntry, uuid.UUID(ids[3])).record_posted_at
    for entry_id in ids[2:5]:  # ties on the posting time must still page deterministically (by record)
        row = db.get(TimelineEntry, uuid.UUID(entry_id))
        row.posted_at = row.record_posted_at = same_moment
    db.flush()
    seen, cursor, pages = [], None, 0
    while True:
        page = feed(client, doctor, world.patient_id, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [e["id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    stamps = [(db.get(TimelineEntry, uuid.UUID(i)).record_posted_at, i) for i in seen]
    assert stamps == sorted(stamps, key=lambda s: (s[0], s[1]), reverse=True)


def test_records_amended_between_two_page_loads_are_neither_repeated_nor_skipped(client, db, world, as_user):
    # Ties on the first posting time are broken by the record, which an amendment keeps, not by the row id
    # of its current version, which an amendment replaces: the record must not jump across the cursor.
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    entries = [posted(client, nurse, world.patient_id, "message", {"text": f"連絡{i}"}) for i in range(8)]
    same_moment = db.get(TimelineEntry, uuid.UUID(entries[0]["id"])).record_posted_at
    for entry in entries:
        row = db.get(TimelineEntry, uuid.UUID(entry["id"]))
        row.posted_at = row.record_posted_at = same_moment
    db.flush()
    first = feed(client, doctor, world.patient_id, limit=4)
    for entry in entries:
        assert amend(client, nurse, entry, {"text": entry["data"]["text"] + "（訂正）"}).status_code == 201
    second = feed(client, doctor, world.patient_id, limit=4, cursor=first["next_cursor"])
    records = [e["record_id"] for e in first["items"] + second["items"]]
    assert sorted(records) == sorted(e["record_id"] for e in entries)
    assert [e["version"] for e in second["items"]] == [2, 2, 2, 2]
    assert second["next_cursor"] is None


def test_filters_by_sheet_kind_and_author_profession(client, world, as_user, team):
    posted(client, as_user(world.nurse), world.patient_id, "care-note")
    posted(client, as_user(world.physician), world.patient_id, "physician-visit")
    posted(client, as_user(team.care_manager), world.patient_id, "message", {"text": "ケアマネより"})
    doctor = as_user(world.physician)
    notes = feed(client, doctor, world.patient_id, kind="care-note")["items"]
    assert [e["sheet"] for e in notes] == ["care-note"]
    both = feed(client, doctor, world.patient_id, kind=["care-note", "message"])["items"]
    assert sorted(e["sheet"] for e in both) == ["care-note", "message"]
    by_cm = feed(client, doctor, world.patient_id, profession="care_manager")["items"]
    assert [e["author"]["name"] for e in by_cm] == ["高橋 健一"]


def test_date_range_is_inclusive_in_japan_time(client, db, world, as_user):
    nurse = as_user(world.nurse)
    early = posted(client, nurse, world.patient_id, "message", {"text": "6月1日 08:30"})
    late = posted(client, nurse, world.patient_id, "message", {"text": "6月2日 23:50"})
    for entry, moment in ((early, datetime(2025, 6, 1, 8, 30, tzinfo=JST)),
                          (late, datetime(2025, 6, 2, 23, 50, tzinfo=JST))):
        row = db.get(TimelineEntry, uuid.UUID(entry["id"]))
        row.posted_at = row.record_posted_at = moment
    db.flush()
    doctor = as_user(world.physician)

    def texts(**params):
        return [e["data"]["text"] for e in feed(client, doctor, world.patient_id, **params)["items"]]

    assert texts(since="2025-06-02", until="2025-06-02") == ["6月2日 23:50"]
    assert texts(since="2025-06-01", until="2025-06-01") == ["6月1日 08:30"]
    assert texts(since="2025-06-03") == []
    assert texts(until="2025-06-02") == ["6月2日 23:50", "6月1日 08:30"]


def test_bad_paging_parameters_are_422(client, world, as_user):
    doctor = as_user(world.physician)
    url = f"/api/v1/patients/{world.patient_id}/timeline"
    for params, path in (({"cursor": "not-a-cursor"}, "/query/cursor"), ({"limit": 0}, "/query/limit"),
                         ({"limit": 101}, "/query/limit"), ({"since": "2025-13-01"}, "/query/since"),
                         ({"colour": "red"}, "/query/colour")):
        r = client.get(url, headers=doctor, params=params)
        assert r.status_code == 422, params
        assert path in [f["path"] for f in r.json()["fields"]], r.json()


def test_a_page_lists_at_most_the_limit_and_defaults_to_fifty(client, db, world, as_user):
    nurse = as_user(world.nurse)
    for i in range(3):
        posted(client, nurse, world.patient_id, "message", {"text": f"{i}"})
    page = feed(client, as_user(world.physician), world.patient_id, limit=2)
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert feed(client, as_user(world.physician), world.patient_id)["next_cursor"] is None


def test_unknown_filter_values_are_422_naming_the_parameter(client, world, as_user):
    doctor = as_user(world.physician)
    url = f"/api/v1/patients/{world.patient_id}/timeline"
    for params, path in (({"kind": ["care-note", "care-notes"]}, "/query/kind/1"),
                         ({"profession": "doctor"}, "/query/profession/0")):
        r = client.get(url, headers=doctor, params=params)
        assert r.status_code == 422, params
        assert [f["path"] for f in r.json()["fields"]] == [path]


def test_a_date_range_that_ends_before_it_starts_is_422_naming_until(client, world, as_user):
    r = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=as_user(world.physician),
                   params={"since": "2025-06-02", "until": "2025-06-01"})
    assert r.status_code == 422
    [problem] = r.json()["fields"]
    assert problem["path"] == "/query/until"
    assert problem["message_ja"] == "終了日が開始日より前になっています"
    assert "until must not be before since" in problem["message_en"]


def test_an_amended_record_keeps_its_place_and_its_day_on_the_timeline(client, db, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    older = posted(client, nurse, world.patient_id, "message", {"text": "6月1日の連絡"})
    row = db.get(TimelineEntry, uuid.UUID(older["id"]))
    row.posted_at = row.record_posted_at = datetime(2025, 6, 1, 9, 0, tzinfo=JST)
    db.flush()
    newer = posted(client, nurse, world.patient_id, "message", {"text": "今日の連絡"})
    corrected = amend(client, nurse, older, {"text": "6月1日の連絡（訂正）"}, "誤字").json()

    items = feed(client, doctor, world.patient_id)["items"]
    assert [(e["id"], e["version"]) for e in items] == [(newer["id"], 1), (corrected["id"], 2)]
    assert items[1]["record_posted_at"].startswith("2025-06-01T00:00:00")
    assert items[1]["posted_at"] > items[0]["posted_at"]
    on_the_day = feed(client, doctor, world.patient_id, since="2025-06-01", until="2025-06-01")["items"]
    assert [e["data"]["text"] for e in on_the_day] == ["6月1日の連絡（訂正）"]
    today = datetime.now(JST).date().isoformat()
    assert [e["id"] for e in feed(client, doctor, world.patient_id, since=today)["items"]] == [newer["id"]]
