"""Staff administration and sign-ins are on the audit log: who, which account, what happened — ids and
codes only, never an email address or a password."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.audit import service as audit
from renkei.audit.models import AuditEvent
from tests.factories import PASSWORD, auth_headers, make_user


@pytest.fixture
def admin(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.clinic_admin)


def _rows(db, request_id: str) -> list[AuditEvent]:
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq))
    return list(rows)


def _one(db, response) -> tuple:
    [row] = _rows(db, response.headers["x-request-id"])
    return (row.actor_user_id, row.action, row.event, row.decision, row.reason, row.target_ids)


def test_staff_administration_actions_are_recorded(client, db, world, admin):
    staff = make_user(db, world.clinic, profession="nurse", name="対象 職員")
    target = f'["{staff.id}"]'
    actor = world.clinic_admin.id
    steps = [
        (client.post(f"/api/v1/staff/{staff.id}/disable", headers=admin), "staff.disable", "ok"),
        (client.post(f"/api/v1/staff/{staff.id}/enable", headers=admin), "staff.enable", "ok"),
        (client.patch(f"/api/v1/staff/{staff.id}", headers=admin, json={"role": "org_admin"}),
         "staff.role_change", "org_admin"),
        (client.patch(f"/api/v1/staff/{staff.id}", headers=admin, json={"profession": "physician"}),
         "staff.profession_change", "physician"),
        (client.post(f"/api/v1/staff/{staff.id}/reset-2fa", headers=admin), "staff.reset_2fa", "ok"),
    ]
    for response, event, reason in steps:
        assert response.status_code == 200, response.text
        assert _one(db, response) == (actor, "staff_admin", event, "allow", reason, target)


def test_adding_a_professional_is_recorded_without_their_email_or_password(client, db, world, admin):
    new = {"email": "new.nurse@clinic.example", "name": "新人 看護", "profession": "nurse", "role": "member",
           "password": "a-long-initial-passphrase-2026"}
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", headers=admin, json=new)
    assert r.status_code == 201, r.text
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.event, row.target_ids) == ("staff.create", f'["{r.json()["id"]}"]')
    dump = audit.canonical(row).decode()
    assert new["email"] not in dump and new["password"] not in dump and "新人" not in dump


def test_a_successful_sign_in_is_recorded_as_the_accounts_own_action(client, db, world):
    r = client.post("/api/v1/auth/login", json={"email": world.nurse.email, "password": PASSWORD})
    assert r.status_code == 200
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.actor_user_id, row.organisation_id, row.action, row.event, row.decision, row.reason) == (
        world.nurse.id, world.nursing.id, "sign_in", "auth.sign_in", "allow", "ok")


@pytest.mark.parametrize("who", ["wrong_password", "unknown_account", "account_disabled"])
def test_failed_sign_ins_are_recorded_although_the_request_fails(client, db, world, who):
    email, password = world.nurse.email, "not-the-password-at-all"
    if who == "unknown_account":
        email = "nobody@nowhere.example"
    if who == "account_disabled":
        world.nurse.active, password = False, PASSWORD
        db.flush()
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 401
    [row] = _rows(db, r.headers["x-request-id"])
    assert (row.actor_user_id, row.action, row.decision, row.reason) == (None, "sign_in", "deny", who)
    known = who != "unknown_account"
    assert row.target_ids == (f'["{world.nurse.id}"]' if known else "[]")
    assert row.organisation_id == (world.nursing.id if known else None)
    dump = audit.canonical(row).decode()
    assert email not in dump and password not in dump


def test_a_sign_in_through_the_page_is_recorded_too(client, db, world):
    page = client.get("/login")
    token = page.cookies.get("renkei_login_csrf") or client.cookies.get("renkei_login_csrf")
    r = client.post("/login", data={"email": world.nurse.email, "password": "wrong-password-here",
                                    "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 401
    assert [(row.action, row.reason) for row in _rows(db, r.headers["x-request-id"])] == [
        ("sign_in", "wrong_password")]


def test_the_org_admin_finds_their_staffs_sign_ins(client, db, world, admin):
    client.post("/api/v1/auth/login", json={"email": world.physician.email, "password": "wrong-password-x"})
    found = client.get("/api/v1/audit/events", headers=admin, params={"action": "sign_in"}).json()
    latest = [(e["reason"], e["target_ids"]) for e in found][:1]
    assert latest == [("wrong_password", [str(world.physician.id)])]
