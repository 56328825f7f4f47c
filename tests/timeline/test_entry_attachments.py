"""Files travel on the entry itself, for every sheet (SHEETS.md §7): checked like the files a sheet's data
names, opened to the team when the entry is posted, kept by amendments."""

from __future__ import annotations

from sqlalchemy import func, select

from renkei.timeline.models import TimelineEntry
from tests.factories import grant_consent, make_patient
from tests.timeline.support import amend, png_bytes, post, posted, upload


def photo(client, headers, patient_id, sheet: str = "message") -> str:
    r = upload(client, headers, patient_id, sheet, png_bytes(), "IMG_0101.png")
    assert r.status_code == 201, r.text
    return r.json()["id"]


def download(client, headers, attachment_id: str):
    return client.get(f"/api/v1/attachments/{attachment_id}", headers=headers)


def test_a_message_carrying_a_photo_opens_it_to_the_team_and_not_to_outsiders(client, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    attachment = photo(client, nurse, world.patient_id)
    assert download(client, doctor, attachment).status_code == 404, "not before it is posted"
    entry = posted(client, nurse, world.patient_id, "message", {"text": "褥瘡の写真です"},
                   attachment_ids=[attachment])
    assert [(a["id"], a["content_type"], a["sheet"]) for a in entry["attachments"]] == [
        (attachment, "image/png", "message")]
    assert download(client, doctor, attachment).status_code == 200
    listed = client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).json()["items"]
    assert [a["id"] for a in listed[0]["attachments"]] == [attachment]
    opened = client.get(f"/api/v1/entries/{entry['id']}", headers=doctor).json()
    assert [a["id"] for a in opened["attachments"]] == [attachment]
    outsider = download(client, as_user(world.outsider), attachment)
    assert outsider.status_code == 404 and outsider.content[:4] != b"\x89PNG"


def test_files_of_another_patient_or_someone_elses_unposted_upload_are_refused_by_position(
    client, db, keyring, world, as_user,
):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    other = make_patient(db, keyring, world.physician, name="別人 花子", name_kana="ベツジン ハナコ")
    grant_consent(db, keyring, other, world.physician)
    elsewhere = photo(client, doctor, other)
    not_mine = photo(client, doctor, world.patient_id)
    mine = photo(client, nurse, world.patient_id)
    before = db.scalar(select(func.count()).select_from(TimelineEntry))
    r = post(client, nurse, world.patient_id, "message", {"text": "写真"},
             attachment_ids=[mine, elsewhere, not_mine, mine])
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == [
        "/attachment_ids/1", "/attachment_ids/2", "/attachment_ids/3"]
    assert db.scalar(select(func.count()).select_from(TimelineEntry)) == before
    too_many = post(client, nurse, world.patient_id, "message", {"text": "写真"}, attachment_ids=[mine] * 21)
    assert too_many.status_code == 422 and too_many.json()["fields"][0]["path"] == "/attachment_ids"


def test_a_draft_keeps_its_files_private_until_posted_and_an_amendment_keeps_or_replaces_them(
    client, world, as_user,
):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    first = photo(client, nurse, world.patient_id)
    draft = post(client, nurse, world.patient_id, "message", {"text": "下書き"}, status="draft",
                 attachment_ids=[first])
    assert [a["id"] for a in draft.json()["attachments"]] == [first]
    assert download(client, doctor, first).status_code == 404
    final = client.put(f"/api/v1/entries/{draft.json()['id']}",
                       headers={**nurse, "If-Match": draft.headers["etag"]},
                       json={"data": {"text": "確定"}, "status": "final", "attachment_ids": [first]})
    assert final.status_code == 200, final.text
    assert download(client, doctor, first).status_code == 200

    kept = amend(client, nurse, final.json(), {"text": "確定（訂正）"}).json()
    assert [a["id"] for a in kept["attachments"]] == [first]
    second = photo(client, nurse, world.patient_id)
    replaced = amend(client, nurse, kept, {"text": "写真を差し替え"}, attachment_ids=[second]).json()
    assert [a["id"] for a in replaced["attachments"]] == [second]
    assert download(client, doctor, second).status_code == 200
    history = client.get(f"/api/v1/entries/{replaced['id']}/history", headers=doctor).json()
    assert [[a["id"] for a in v["attachments"]] for v in history] == [[second], [first], [first]]
