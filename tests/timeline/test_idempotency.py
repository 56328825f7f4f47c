"""Idempotency-Key: a retried POST replays its first response; the same key with another body is 422."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from renkei.errors import Conflict
from renkei.idempotency import service as idempotency
from renkei.idempotency.models import IdempotencyKey
from renkei.timeline.models import Attachment, TimelineEntry
from tests.factories import actor_of
from tests.timeline.support import etag_of, png_bytes, post, posted, upload


class Done(BaseModel):
    ok: bool


def entries(db) -> int:
    return db.scalar(select(func.count()).select_from(TimelineEntry))


def test_same_key_and_body_replays_the_original_response_without_a_duplicate(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0001"}
    first = post(client, nurse, world.patient_id, "message", {"text": "本日の訪問は終了しました"})
    assert first.status_code == 201
    count = entries(db)
    retry = post(client, nurse, world.patient_id, "message", {"text": "本日の訪問は終了しました"})
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true" and retry.headers["etag"] == first.headers["etag"]
    assert entries(db) == count


def test_same_key_with_a_different_body_is_422_and_stores_nothing(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0002"}
    assert post(client, nurse, world.patient_id, "message", {"text": "一回目"}).status_code == 201
    count = entries(db)
    r = post(client, nurse, world.patient_id, "message", {"text": "二回目"})
    assert r.status_code == 422 and r.json()["error"] == "idempotency_key_reused"
    assert [f["path"] for f in r.json()["fields"]] == ["/header/idempotency-key"]
    assert entries(db) == count


def test_keys_are_scoped_per_user(client, db, world, as_user):
    key = {"Idempotency-Key": "shared-key-1"}
    mine = post(client, {**as_user(world.nurse), **key}, world.patient_id, "message", {"text": "同じ内容"})
    theirs = post(client, {**as_user(world.physician), **key}, world.patient_id, "message", {"text": "同じ内容"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


def test_keys_are_kept_seven_days_then_forgotten(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0003"}
    first = post(client, nurse, world.patient_id, "message", {"text": "連絡"}).json()
    row = db.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "tablet-7f3a-0003")).one()
    assert row.expires_at - row.created_at >= timedelta(days=7)
    row.expires_at = row.created_at - timedelta(seconds=1)
    db.flush()
    again = post(client, nurse, world.patient_id, "message", {"text": "連絡"})
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_claiming_a_key_deletes_that_users_expired_keys_only(client, db, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    for headers, key in ((nurse, "old-nurse-key"), (doctor, "old-doctor-key")):
        assert post(client, {**headers, "Idempotency-Key": key}, world.patient_id, "message",
                    {"text": "古い連絡"}).status_code == 201
    for row in db.scalars(select(IdempotencyKey)):
        row.expires_at = row.created_at - timedelta(seconds=1)
    db.flush()
    assert post(client, {**nurse, "Idempotency-Key": "new-nurse-key"}, world.patient_id, "message",
                {"text": "新しい連絡"}).status_code == 201
    db.expire_all()
    assert sorted(db.scalars(select(IdempotencyKey.key))) == ["new-nurse-key", "old-doctor-key"]


def test_stored_response_is_encrypted(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0004"}
    post(client, nurse, world.patient_id, "message", {"text": "暗号化されるべき返答"})
    row = db.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "tablet-7f3a-0004")).one()
    assert row.response_ct and "暗号化".encode() not in row.response_ct


def test_replay_is_refused_once_the_member_has_left_the_team(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0005"}
    assert post(client, nurse, world.patient_id, "message", {"text": "退任前の連絡"}).status_code == 201
    doctor = as_user(world.physician)
    team = client.get(f"/api/v1/patients/{world.patient_id}/team", headers=doctor).json()
    membership = next(m for m in team if m["user_id"] == str(world.nurse.id))
    client.request("DELETE", f"/api/v1/patients/{world.patient_id}/team/{membership['id']}", headers=doctor)
    r = post(client, nurse, world.patient_id, "message", {"text": "退任前の連絡"})
    assert r.status_code == 404 and "退任前の連絡" not in r.text


def test_a_failed_request_does_not_burn_its_key(client, db, world, as_user):
    nurse = {**as_user(world.nurse), "Idempotency-Key": "tablet-7f3a-0006"}
    assert post(client, nurse, world.patient_id, "message", {"text": ""}).status_code == 422
    assert post(client, nurse, world.patient_id, "message", {"text": "直した"}).status_code == 201


def test_amend_and_upload_are_retry_safe_too(client, db, world, as_user):
    nurse = as_user(world.nurse)
    entry = posted(client, nurse, world.patient_id, "message", {"text": "元"})
    body = {"data": {"text": "訂正後"}, "reason": "誤記"}
    keyed = {**nurse, "Idempotency-Key": "amend-0001", "If-Match": etag_of(entry)}
    first = client.post(f"/api/v1/entries/{entry['id']}/amend", headers=keyed, json=body)
    retry = client.post(f"/api/v1/entries/{entry['id']}/amend", headers=keyed, json=body)
    assert first.status_code == retry.status_code == 201 and retry.json()["id"] == first.json()["id"]

    photo = png_bytes()
    a = upload(client, nurse, world.patient_id, "care-note", photo, **{"Idempotency-Key": "upload-0001"})
    b = upload(client, nurse, world.patient_id, "care-note", photo, **{"Idempotency-Key": "upload-0001"})
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert db.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.patient_id == world.patient_id)) == 1
    other = upload(client, nurse, world.patient_id, "care-note", png_bytes((9, 9)),
                   **{"Idempotency-Key": "upload-0001"})
    assert other.status_code == 422


def test_malformed_key_is_422(client, world, as_user):
    r = post(client, {**as_user(world.nurse), "Idempotency-Key": "has spaces"}, world.patient_id, "message",
             {"text": "x"})
    assert r.status_code == 422 and r.json()["fields"][0]["path"] == "/header/idempotency-key"


def test_a_key_claimed_by_a_request_still_running_is_409_and_the_first_claim_stands(db, world, keyring):
    actor = actor_of(world.nurse)
    fp = idempotency.fingerprint("POST", "/x", {"text": "一回目"})
    inner: list[int] = []

    def produce_while_a_retry_arrives():
        with pytest.raises(Conflict):
            idempotency.run(db, keyring=keyring, actor=actor, key="tablet-busy-1", request_fingerprint=fp,
                            patient_id=world.patient_id, status_code=201, produce=lambda: Done(ok=True))
        inner.append(1)
        return Done(ok=True)

    first = idempotency.run(db, keyring=keyring, actor=actor, key="tablet-busy-1", request_fingerprint=fp,
                            patient_id=world.patient_id, status_code=201,
                            produce=produce_while_a_retry_arrives)
    assert inner == [1] and first.replayed is False
    replay = idempotency.run(db, keyring=keyring, actor=actor, key="tablet-busy-1", request_fingerprint=fp,
                             patient_id=world.patient_id, status_code=201, produce=lambda: Done(ok=False))
    assert replay.replayed is True and replay.body == {"ok": True}
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)
                     .where(IdempotencyKey.key == "tablet-busy-1")) == 1
