"""A break-the-glass grant is read-only: its holder neither acknowledges receipt for the addressed
organisation nor leaves read receipts on the care team's entries."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.timeline.models import EntryRead, EntryRecipient
from tests.factories import PASSWORD, make_user
from tests.timeline.support import posted

LOOKUP = {"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"}
REQUEST = {"reason_code": "emergency_transport", "reason": "心肺停止で搬送", "password": PASSWORD, "confirm": True}


def _holder(client, db, world, as_user, org):
    """An emergency physician of `org`, outside the team, holding a grant on the world's patient."""
    er = make_user(db, org, profession="physician", name="救急 医師")
    headers = as_user(er)
    assert client.post("/api/v1/patients/lookup", headers=headers, json=LOOKUP).json()
    assert client.post(f"/api/v1/patients/{world.patient_id}/break-glass", headers=headers,
                       json=REQUEST).status_code == 201
    return er, headers


def test_a_grant_holder_in_the_addressed_hospital_cannot_acknowledge_receipt(
    client, db, world, as_user, team,
):
    entry = posted(client, as_user(world.physician), world.patient_id, "emergency-info",
                   recipients=[{"organisation_id": str(team.hospital.id)}])
    er, headers = _holder(client, db, world, as_user, team.hospital)
    assert client.get(f"/api/v1/entries/{entry['id']}", headers=headers).status_code == 200
    r = client.post(f"/api/v1/entries/{entry['id']}/acknowledge", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "not_a_recipient"
    db.expire_all()
    assert [row.acknowledged_at for row in db.scalars(
        select(EntryRecipient).where(EntryRecipient.entry_id == uuid.UUID(entry["id"])))] == [None]
    denial = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == er.id,
                                                 AuditEvent.decision == "deny")).one()
    assert (denial.reason, denial.event, denial.grant_id is not None) == (
        "outside_break_glass_scope", "entry.acknowledged", True)
    # The discharge coordinator of the same hospital, on the team, still can.
    mine = client.post(f"/api/v1/entries/{entry['id']}/acknowledge", headers=as_user(team.msw))
    assert mine.status_code == 200


def test_a_grant_holder_leaves_no_read_receipts(client, db, world, as_user, team):
    entry = posted(client, as_user(world.physician), world.patient_id, "emergency-info")
    er, headers = _holder(client, db, world, as_user, team.hospital)
    assert client.get(f"/api/v1/entries/{entry['id']}", headers=headers).status_code == 200
    assert client.post(f"/api/v1/entries/{entry['id']}/read", headers=headers).status_code == 204
    many = client.post(f"/api/v1/patients/{world.patient_id}/timeline/read", headers=headers,
                       json={"entry_ids": [entry["id"]]})
    assert many.status_code == 200 and many.json() == {"marked": 0}
    db.expire_all()
    assert db.scalars(select(EntryRead).where(EntryRead.user_id == er.id)).all() == []
    nurse = as_user(world.nurse)
    assert client.post(f"/api/v1/patients/{world.patient_id}/timeline/read", headers=nurse,
                       json={"entry_ids": [entry["id"]]}).json() == {"marked": 1}
