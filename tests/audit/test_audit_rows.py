"""What the audit log records: one row per request that touched a patient, who/what/why/when/where,
denials kept although the request fails, and no patient data in any row."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from renkei.audit import service as audit
from renkei.audit.models import AuditEvent
from renkei.db.types import utcnow
from tests.access.support import Ctx
from tests.factories import PASSWORD, auth_headers, make_patient


def _rows(db, request_id: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq)))


def test_reading_a_patient_leaves_one_row_naming_who_what_why_when_and_where(client, db, settings, keyring, world):
    r = client.get(f"/api/v1/patients/{world.patient_id}", headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 200
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.actor_user_id, row.organisation_id, row.profession, row.role) == (
        world.nurse.id, world.nursing.id, "nurse", "member")
    assert (row.action, row.patient_id, row.decision, row.reason, row.consent_id) == (
        "read_registration", world.patient_id, "allow", "team_consent", world.consent_id)
    assert row.client_addr == "testclient" and utcnow() - row.occurred_at < timedelta(minutes=1)
    assert row.occurred_at.utcoffset() == timedelta(0)


def test_a_page_that_reads_a_patient_twice_leaves_one_row(client, db, settings, keyring, world):
    r = client.get(f"/patients/{world.patient_id}", headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 200
    assert len(_rows(db, r.headers["x-request-id"])) == 1


def test_a_denial_is_kept_although_the_request_fails_with_404(client, db, settings, keyring, world):
    r = client.get(f"/api/v1/patients/{world.patient_id}", headers=auth_headers(db, settings, keyring, world.outsider))
    assert r.status_code == 404
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.actor_user_id, row.decision, row.reason, row.patient_id) == (
        world.outsider.id, "deny", "not_on_team", world.patient_id)


def test_a_request_that_failed_after_access_was_allowed_leaves_a_failed_attempt_not_a_disclosure(
    client, db, settings, keyring, world,
):
    headers = auth_headers(db, settings, keyring, world.physician)
    r = client.post(f"/api/v1/patients/{world.patient_id}/team", headers=headers,
                    json={"user_id": str(uuid.uuid4()), "team_role": "physician"})
    assert r.status_code == 422
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.action, row.event, row.patient_id, row.decision, row.reason) == (
        "manage_team", "team.add", world.patient_id, "deny", "request_failed")


def test_listing_my_patients_records_each_patient_listed(client, db, settings, keyring, world):
    second = make_patient(db, keyring, world.nurse, name="二人目 花子", name_kana="フタリメ ハナコ")
    r = client.get("/api/v1/patients", headers=auth_headers(db, settings, keyring, world.nurse))
    assert len(r.json()) == 2
    rows = _rows(db, r.headers["x-request-id"])
    assert {(row.patient_id, row.action, row.reason) for row in rows} == {
        (world.patient_id, "read_registration", "listed"), (second, "read_registration", "listed")}


def test_lookups_are_recorded_with_their_hits_and_misses(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.outsider)
    hit = client.post("/api/v1/patients/lookup", headers=headers, json={"insurance_number": "0000123456"})
    miss = client.post("/api/v1/patients/lookup", headers=headers, json={"insurance_number": "9999999999"})
    assert [(r.action, r.patient_id, r.reason) for r in _rows(db, hit.headers["x-request-id"])] == [
        ("lookup", world.patient_id, "exact_match")]
    assert [(r.action, r.patient_id, r.reason) for r in _rows(db, miss.headers["x-request-id"])] == [
        ("lookup", None, "no_match")]


def test_writes_record_the_ids_they_created(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.physician)
    r = client.post(f"/api/v1/patients/{world.patient_id}/team", headers=headers,
                    json={"user_id": str(world.outsider.id), "team_role": "care_manager"})
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.action, row.event, row.target_ids) == ("manage_team", "team.add", f'["{r.json()["id"]}"]')


def test_audit_rows_hold_no_patient_data(client, db, settings, keyring, world):
    ctx = Ctx(client, db, settings, keyring, world)
    anchor = audit.head(db)[0]
    doctor = ctx.headers(world.physician)
    client.post(f"/api/v1/patients/{world.patient_id}/consents", headers=doctor, json={
        "given_by": "proxy", "proxy_name": "代理 秘密子", "proxy_relationship": "長女", "method": "verbal",
        "scope": "blanket", "obtained_on": utcnow().date().isoformat(), "note": "秘密の備考", "password": PASSWORD})
    ctx.break_glass(ctx.er_physician)
    client.get("/api/v1/patients", headers=doctor)
    client.get(f"/patients/{world.patient_id}/consents", headers=doctor)
    rows = db.scalars(select(AuditEvent).where(AuditEvent.seq > anchor)).all()
    assert len(rows) >= 6
    dump = "\n".join(audit.canonical(row).decode() for row in rows)
    for secret in ("山田", "ヤマダ", "花子", "0000123456", "39123456", "みどり市中央", "0120-000-000", "代理 秘密子",
                   "長女", "秘密の備考", "心肺停止", PASSWORD):
        assert secret not in dump
