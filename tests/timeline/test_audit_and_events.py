"""Every timeline read and write is decided and audited with the entry ids; changes pass one event point."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from renkei.audit.models import AuditEvent
from tests.timeline.support import amend, posted


def audit_rows(db, patient_id, action):
    return list(db.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient_id,
                                                    AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_posting_and_reading_the_timeline_are_audited_with_the_entry_ids(client, db, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "監査される連絡"})
    writes = audit_rows(db, world.patient_id, "write_clinical")
    assert writes and entry["id"] in json.loads(writes[-1].target_ids) and writes[-1].decision == "allow"
    client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=as_user(world.physician))
    reads = [r for r in audit_rows(db, world.patient_id, "read_clinical")
             if r.actor_user_id == world.physician.id]
    assert reads and entry["id"] in json.loads(reads[-1].target_ids)
    assert all("監査" not in (r.target_ids + (r.reason or "")) for r in writes + reads)


def test_an_outsiders_denied_read_is_audited_although_the_request_fails(client, db, world, as_user):
    entry = posted(client, as_user(world.nurse), world.patient_id, "message", {"text": "連絡"})
    assert client.get(f"/api/v1/entries/{entry['id']}", headers=as_user(world.outsider)).status_code == 404
    denials = [r for r in audit_rows(db, world.patient_id, "read_clinical")
               if r.actor_user_id == world.outsider.id]
    assert [r.decision for r in denials] == ["deny"]


def test_timeline_changes_pass_one_event_point_with_ids_only(client, world, as_user, team, caplog):
    msw = as_user(team.msw)
    with caplog.at_level(logging.INFO, logger="renkei.timeline"):
        sent = posted(client, msw, world.patient_id, "discharge-info",
                      recipients=[{"user_id": str(team.care_manager.id)}])
        client.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=as_user(team.care_manager))
        amended = amend(client, msw, sent, sent["data"], "再送").json()
        client.post(f"/api/v1/entries/{amended['id']}/entered-in-error", headers=msw, json={"reason": "誤送信"})
        posted(client, msw, world.patient_id, "message", {"text": "下書き"}, status="draft")
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "renkei.timeline"]
    assert [e["event"] for e in events] == ["entry.created", "entry.acknowledged", "entry.amended",
                                            "entry.entered_in_error"]
    assert events[0]["entry_id"] == sent["id"] and events[2]["entry_id"] == amended["id"]
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "再送" not in text and "誤送信" not in text and "退院" not in text
