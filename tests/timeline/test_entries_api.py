"""Entries: posting, drafts with If-Match, immutability, amendments, entered-in-error, encryption at rest."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from renkei.patients import keys
from renkei.timeline.models import EntryRead, TimelineEntry
from tests.timeline.support import amend, etag_of, example, post, posted


def count_entries(db) -> int:
    return db.scalar(select(func.count()).select_from(TimelineEntry))


def test_team_member_with_consent_posts_a_care_note_that_the_team_sees(client, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "care-note", priority="urgent")
    assert entry["status"] == "final" and entry["priority"] == "urgent" and entry["version"] == 1
    assert entry["author"]["name"] == "看護 花子" and entry["author"]["profession"] == "nurse"
    assert entry["data"]["observations"] == example("care-note")["observations"]
    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=as_user(world.physician)).json()
    assert [e["id"] for e in feed["items"]] == [entry["id"]]
    assert feed["items"][0]["priority"] == "urgent"


def test_payload_is_stored_encrypted_and_bound_to_its_row(client, db, keyring, world, as_user):
    marker = "褥瘡の処置を実施した（暗号化確認用）"
    entry = posted(client, as_user(world.nurse), world.patient_id, "care-note", {"observations": marker})
    row = db.get(TimelineEntry, uuid.UUID(entry["id"]))
    assert marker.encode() not in row.payload_ct and "褥瘡".encode() not in row.payload_ct
    opened = keys.open_json(db, keyring, world.patient_id, row.payload_ct, aad="timeline_entry.payload_ct",
                            binding=entry["id"])
    assert opened["observations"] == marker


def test_draft_is_visible_only_to_its_author(client, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    draft = posted(client, nurse, world.patient_id, "care-note", status="draft")
    assert draft["status"] == "draft" and draft["posted_at"] is None
    assert client.get(f"/api/v1/entries/{draft['id']}", headers=nurse).status_code == 200
    hidden = client.get(f"/api/v1/entries/{draft['id']}", headers=doctor)
    assert hidden.status_code == 404 and "褥瘡" not in hidden.text
    assert client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).json()["items"] == []
    assert client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=nurse).json()["items"] == []
    mine = client.get(f"/api/v1/patients/{world.patient_id}/drafts", headers=nurse).json()
    assert [d["id"] for d in mine] == [draft["id"]]
    assert client.get(f"/api/v1/patients/{world.patient_id}/drafts", headers=doctor).json() == []


def test_editing_a_draft_needs_the_current_etag_in_if_match(client, world, as_user):
    nurse = as_user(world.nurse)
    created = post(client, nurse, world.patient_id, "message", {"text": "下書き"}, status="draft")
    etag = created.headers["etag"]
    url = f"/api/v1/entries/{created.json()['id']}"

    missing = client.put(url, json={"data": {"text": "版1"}}, headers=nurse)
    assert missing.status_code == 428 and missing.json()["error"] == "if_match_required"

    first = client.put(url, json={"data": {"text": "版1"}}, headers={**nurse, "If-Match": etag})
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"text": "版1"} and first.json()["revision"] == 2
    assert first.headers["etag"] != etag

    stale = client.put(url, json={"data": {"text": "古い版から"}}, headers={**nurse, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"] == "stale_version"
    assert client.get(url, headers=nurse).json()["data"] == {"text": "版1"}

    posted_now = client.put(url, json={"data": {"text": "確定"}, "status": "final"},
                            headers={**nurse, "If-Match": first.headers["etag"]})
    assert posted_now.status_code == 200 and posted_now.json()["status"] == "final"
    assert posted_now.json()["posted_at"] is not None
    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=as_user(world.physician)).json()
    assert [e["data"] for e in feed["items"]] == [{"text": "確定"}]


def test_a_weak_etag_never_satisfies_if_match(client, world, as_user):
    nurse = as_user(world.nurse)
    created = post(client, nurse, world.patient_id, "message", {"text": "下書き"}, status="draft")
    url = f"/api/v1/entries/{created.json()['id']}"
    weak = client.put(url, json={"data": {"text": "弱い比較"}},
                      headers={**nurse, "If-Match": "W/" + created.headers["etag"]})
    assert weak.status_code == 412 and weak.json()["error"] == "stale_version"
    assert client.get(url, headers=nurse).json()["data"] == {"text": "下書き"}
    listed = client.put(url, json={"data": {"text": "強い比較"}},
                        headers={**nurse, "If-Match": f'W/"9.9", {created.headers["etag"]}'})
    assert listed.status_code == 200, listed.text


def test_amending_needs_the_current_etag_in_if_match(client, db, world, as_user):
    nurse = as_user(world.nurse)
    original = posted(client, nurse, world.patient_id, "message", {"text": "訪問は14時です"})
    url = f"/api/v1/entries/{original['id']}/amend"
    body = {"data": {"text": "訪問は15時です"}, "reason": "時刻の誤記"}
    before = count_entries(db)
    missing = client.post(url, headers=nurse, json=body)
    assert missing.status_code == 428 and missing.json()["error"] == "if_match_required"
    assert missing.headers["etag"] == etag_of(original)
    weak = client.post(url, headers={**nurse, "If-Match": "W/" + etag_of(original)}, json=body)
    assert weak.status_code == 412 and weak.json()["error"] == "stale_version"
    assert count_entries(db) == before

    second = amend(client, nurse, original, {"text": "訪問は15時です"}, "時刻の誤記").json()
    # A tablet still holding the first version's tag cannot amend the second version with it.
    stale = client.post(f"/api/v1/entries/{second['id']}/amend",
                        headers={**nurse, "If-Match": etag_of(original)},
                        json={"data": {"text": "訪問は16時です"}, "reason": "再訂正"})
    assert stale.status_code == 412 and stale.json()["error"] == "stale_version"
    assert stale.headers["etag"] == etag_of(second) == '"2.1"'
    history = client.get(url.removesuffix("/amend") + "/history", headers=nurse).json()
    assert [h["data"]["text"] for h in history] == ["訪問は15時です", "訪問は14時です"]


def test_another_member_cannot_edit_my_draft(client, world, as_user):
    draft = post(client, as_user(world.nurse), world.patient_id, "message", {"text": "下書き"}, status="draft")
    r = client.put(f"/api/v1/entries/{draft.json()['id']}", json={"data": {"text": "上書き"}},
                   headers={**as_user(world.physician), "If-Match": draft.headers["etag"]})
    assert r.status_code == 404


def test_editing_a_posted_entry_is_refused_with_409(client, world, as_user):
    nurse = as_user(world.nurse)
    created = post(client, nurse, world.patient_id, "message", {"text": "確定済み"})
    r = client.put(f"/api/v1/entries/{created.json()['id']}", json={"data": {"text": "書き換え"}},
                   headers={**nurse, "If-Match": created.headers["etag"]})
    assert r.status_code == 409 and r.json()["error"] == "entry_immutable"
    assert client.get(f"/api/v1/entries/{created.json()['id']}", headers=nurse).json()["data"] == {"text": "確定済み"}


def test_amending_adds_a_version_with_its_reason_and_keeps_the_history(client, db, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    original = posted(client, nurse, world.patient_id, "message", {"text": "訪問は14時です"})
    r = amend(client, nurse, original, {"text": "訪問は15時です"}, "時刻の誤記")
    assert r.status_code == 201, r.text
    amended = r.json()
    assert amended["version"] == 2 and amended["record_id"] == original["id"]
    assert amended["supersedes_id"] == original["id"] and amended["amendment_reason"] == "時刻の誤記"

    feed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).json()["items"]
    assert [(e["id"], e["data"]["text"]) for e in feed] == [(amended["id"], "訪問は15時です")]
    history = client.get(f"/api/v1/entries/{original['id']}/history", headers=doctor).json()
    assert [(h["version"], h["data"]["text"], h["is_current"]) for h in history] == [
        (2, "訪問は15時です", True), (1, "訪問は14時です", False)
    ]
    old = client.get(f"/api/v1/entries/{original['id']}", headers=doctor).json()
    assert old["is_current"] is False and old["data"]["text"] == "訪問は14時です"
    assert db.scalar(select(func.count()).select_from(TimelineEntry).where(
        TimelineEntry.record_id == uuid.UUID(original["id"]))) == 2


def test_amending_a_superseded_version_is_a_conflict(client, world, as_user):
    nurse = as_user(world.nurse)
    original = posted(client, nurse, world.patient_id, "message", {"text": "一"})
    assert amend(client, nurse, original, {"text": "二"}).status_code == 201
    again = amend(client, nurse, original, {"text": "二"})
    assert again.status_code == 409 and again.json()["error"] == "entry_not_current"


def test_amending_someone_elses_entry_is_forbidden_and_outsiders_get_404(client, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "看護師の連絡"})
    by_colleague = amend(client, as_user(world.physician), entry, {"text": "医師が書き換え"})
    assert by_colleague.status_code == 403 and by_colleague.json()["error"] == "not_author"
    by_outsider = amend(client, as_user(world.outsider), entry, {"text": "医師が書き換え"})
    assert by_outsider.status_code == 404 and "看護師の連絡" not in by_outsider.text
    history = client.get(f"/api/v1/entries/{entry['id']}/history", headers=as_user(world.nurse)).json()
    assert len(history) == 1


def test_amendment_is_validated_like_a_new_entry(client, db, world, as_user):
    nurse = as_user(world.nurse)
    entry = posted(client, nurse, world.patient_id, "message", {"text": "元"})
    before = count_entries(db)
    r = amend(client, nurse, entry, {"text": ""})
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/data/text"]
    assert count_entries(db) == before
    assert client.get(f"/api/v1/entries/{entry['id']}", headers=nurse).json()["is_current"] is True


def test_entered_in_error_keeps_the_entry_visible_with_the_reason(client, db, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    entry = posted(client, nurse, world.patient_id, "care-note")
    r = client.post(f"/api/v1/entries/{entry['id']}/entered-in-error", headers=nurse,
                    json={"reason": "別の利用者の記録でした"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "entered_in_error"
    assert r.json()["entered_in_error"]["reason"] == "別の利用者の記録でした"
    seen = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).json()["items"]
    assert [(e["id"], e["status"]) for e in seen] == [(entry["id"], "entered_in_error")]
    assert db.get(TimelineEntry, uuid.UUID(entry["id"])) is not None
    again = client.post(f"/api/v1/entries/{entry['id']}/entered-in-error", headers=nurse,
                        json={"reason": "再"})
    assert again.status_code == 409
    r = amend(client, nurse, r.json(), example("care-note"), "戻す")
    assert r.status_code == 409


def test_only_the_author_may_mark_an_entry_entered_in_error(client, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "連絡"})
    r = client.post(f"/api/v1/entries/{entry['id']}/entered-in-error", headers=as_user(world.physician),
                    json={"reason": "違う"})
    assert r.status_code == 403
    unchanged = client.get(f"/api/v1/entries/{entry['id']}", headers=as_user(world.nurse)).json()
    assert unchanged["status"] == "final"


def test_a_discarded_draft_is_marked_not_deleted(client, db, world, as_user):
    nurse = as_user(world.nurse)
    draft = posted(client, nurse, world.patient_id, "message", {"text": "不要"}, status="draft")
    r = client.post(f"/api/v1/entries/{draft['id']}/entered-in-error", headers=nurse, json={"reason": "不要"})
    assert r.status_code == 200 and r.json()["status"] == "entered_in_error"
    assert db.get(TimelineEntry, uuid.UUID(draft["id"])) is not None
    assert client.get(f"/api/v1/patients/{world.patient_id}/drafts", headers=nurse).json() == []


def test_profession_outside_the_writing_matrix_cannot_post_that_sheet(client, db, world, as_user):
    before = count_entries(db)
    r = post(client, as_user(world.nurse), world.patient_id, "physician-visit")
    assert r.status_code in (403, 404)
    assert count_entries(db) == before


def test_outsider_gets_404_on_every_timeline_route_without_patient_data(client, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "外部に見せない連絡"})
    outsider = as_user(world.outsider)
    pid, eid = world.patient_id, entry["id"]
    attempts = [
        client.get(f"/api/v1/patients/{pid}/timeline", headers=outsider),
        client.get(f"/api/v1/patients/{pid}/summary", headers=outsider),
        client.get(f"/api/v1/patients/{pid}/drafts", headers=outsider),
        post(client, outsider, pid, "message", {"text": "侵入"}),
        client.get(f"/api/v1/entries/{eid}", headers=outsider),
        client.get(f"/api/v1/entries/{eid}/history", headers=outsider),
        client.post(f"/api/v1/entries/{eid}/read", headers=outsider),
        client.post(f"/api/v1/entries/{eid}/acknowledge", headers=outsider),
        client.post(f"/api/v1/entries/{eid}/entered-in-error", headers=outsider, json={"reason": "x"}),
        client.post(f"/api/v1/patients/{pid}/timeline/read", headers=outsider, json={"entry_ids": [eid]}),
    ]
    for r in attempts:
        assert r.status_code == 404, (r.request.url, r.status_code)
        assert "外部に見せない連絡" not in r.text and "山田" not in r.text


def test_posting_needs_sign_in(client, world):
    r = client.post(f"/api/v1/patients/{world.patient_id}/entries",
                    json={"sheet": "message", "version": 1, "data": {"text": "x"}})
    assert r.status_code == 401


def test_reading_an_entry_marks_it_read_for_that_member_only(client, db, world, as_user, team):
    entry = posted(client, as_user(world.physician), world.patient_id, "message", {"text": "連絡"})
    assert client.get(f"/api/v1/entries/{entry['id']}", headers=as_user(world.nurse)).status_code == 200
    readers = set(db.scalars(select(EntryRead.user_id).where(EntryRead.entry_id == uuid.UUID(entry["id"]))))
    assert readers == {world.physician.id, world.nurse.id}
    detail = client.get(f"/api/v1/entries/{entry['id']}", headers=as_user(world.physician)).json()
    assert {r["name"] for r in detail["read_by"]} == {"医師 一郎", "看護 花子"}
