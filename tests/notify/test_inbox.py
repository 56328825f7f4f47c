"""The inbox: notifications per user, unread first, marked read one by one, never someone else's."""

from __future__ import annotations

import uuid

from renkei.notify import service as notify
from tests.factories import auth_headers


def test_inbox_lists_my_notifications_unread_and_urgent_first(client, db, settings, keyring, world):
    first = notify.notify_users(db, user_ids=[world.nurse.id], kind="entry_posted", patient_id=world.patient_id,
                                refs={"entry_id": uuid.uuid4()})[0]
    urgent = notify.notify_users(db, user_ids=[world.nurse.id, world.physician.id], kind="break_glass",
                                 patient_id=world.patient_id, urgent=True)[0]
    latest = notify.notify_users(db, user_ids=[world.nurse.id, world.nurse.id], kind="entry_posted")
    assert len(latest) == 1
    headers = auth_headers(db, settings, keyring, world.nurse)
    inbox = client.get("/api/v1/notifications", headers=headers).json()
    assert [n["id"] for n in inbox] == [str(urgent), str(latest[0]), str(first)]
    r = client.post(f"/api/v1/notifications/{urgent}/read", headers=headers)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    again = client.post(f"/api/v1/notifications/{urgent}/read", headers=headers)
    assert again.json()["read_at"] == r.json()["read_at"]
    inbox = client.get("/api/v1/notifications", headers=headers).json()
    assert [n["id"] for n in inbox] == [str(latest[0]), str(first), str(urgent)]
    unread = client.get("/api/v1/notifications?unread=true", headers=headers).json()
    assert {n["id"] for n in unread} == {str(latest[0]), str(first)}


def test_someone_elses_notification_is_not_found(client, db, settings, keyring, world):
    theirs = notify.notify_users(db, user_ids=[world.physician.id], kind="break_glass", urgent=True)[0]
    headers = auth_headers(db, settings, keyring, world.nurse)
    assert client.post(f"/api/v1/notifications/{theirs}/read", headers=headers).status_code == 404
    assert client.get("/api/v1/notifications", headers=headers).json() == []


def test_notifications_carry_ids_and_codes_only(client, db, settings, keyring, world):
    notify.notify_users(db, user_ids=[world.nurse.id], kind="consent_changed", patient_id=world.patient_id,
                        refs={"consent_id": world.consent_id})
    [n] = client.get("/api/v1/notifications", headers=auth_headers(db, settings, keyring, world.nurse)).json()
    assert set(n) == {"id", "kind", "patient_id", "refs", "urgent", "created_at", "read_at"}
    assert n["refs"] == {"consent_id": str(world.consent_id)}
