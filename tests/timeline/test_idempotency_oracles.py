"""An Idempotency-Key is looked at only after the access decision: a patient or entry the actor cannot reach
answers exactly like one that does not exist (404), whatever the key, and nothing is stored for it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from renkei.audit.models import AuditEvent
from renkei.idempotency.models import IdempotencyKey
from tests.timeline.support import png_bytes, posted, upload

BODY = {"sheet": "message", "version": 1, "data": {"text": "届いてはいけない"}}


def _keys(db) -> int:
    return db.scalar(select(func.count()).select_from(IdempotencyKey))


@pytest.mark.parametrize("key", ["good-key-0001", "not a valid key"])
def test_posting_to_someone_elses_patient_and_to_no_patient_answer_alike(client, db, world, as_user, key):
    outsider = {**as_user(world.outsider), "Idempotency-Key": key}
    real = client.post(f"/api/v1/patients/{world.patient_id}/entries", json=BODY, headers=outsider)
    fake = client.post(f"/api/v1/patients/{uuid.uuid4()}/entries", json=BODY, headers=outsider)
    assert (real.status_code, real.json()) == (fake.status_code, fake.json()) == (
        404, {"error": "not_found", "detail": "Not found", "fields": []})
    assert _keys(db) == 0
    db.expire_all()
    denied = db.scalars(select(AuditEvent.reason).where(AuditEvent.actor_user_id == world.outsider.id,
                                                       AuditEvent.decision == "deny")).all()
    assert sorted(denied) == ["no_such_patient", "not_on_team"]


def test_uploading_to_no_patient_with_a_key_is_404_not_a_conflict(client, db, world, as_user):
    nurse = as_user(world.nurse)
    r = upload(client, nurse, uuid.uuid4(), "care-note", png_bytes(), **{"Idempotency-Key": "upload-0001"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert _keys(db) == 0


@pytest.mark.parametrize("action", ["amend", "entered-in-error"])
def test_changing_someone_elses_entry_with_a_bad_key_answers_like_a_missing_entry(
    client, db, world, as_user, action,
):
    entry = posted(client, as_user(world.physician), world.patient_id, "message", {"text": "本文"})
    body = {"data": {"text": "訂正"}, "reason": "誤記"} if action == "amend" else {"reason": "誤入力"}
    outsider = {**as_user(world.outsider), "Idempotency-Key": "bad key"}
    theirs = client.post(f"/api/v1/entries/{entry['id']}/{action}", json=body, headers=outsider)
    missing = client.post(f"/api/v1/entries/{uuid.uuid4()}/{action}", json=body, headers=outsider)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    # The team member who may write still gets the key checked.
    author = {**as_user(world.physician), "Idempotency-Key": "bad key"}
    r = client.post(f"/api/v1/entries/{entry['id']}/{action}", json=body, headers=author)
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/header/idempotency-key"]
