"""Ending a break-the-glass grant early: an "inappropriate" review ends it at once, administrators can revoke
a running grant, and the holder cannot simply break the glass again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.access.models import BreakGlassGrant
from renkei.audit.models import AuditEvent
from tests.access.support import Ctx
from tests.factories import PASSWORD, make_user

REQUEST = {"reason_code": "emergency_transport", "reason": "自宅で意識消失、救急搬送", "password": PASSWORD,
           "confirm": True}


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


@pytest.fixture
def hospital_admin(ctx, keyring):
    return ctx.headers(make_user(ctx.db, ctx.hospital, profession="nurse", role="org_admin", keyring=keyring))


def _summary(ctx: Ctx, headers: dict[str, str]) -> int:
    return ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/summary", headers=headers).status_code


def test_an_inappropriate_review_ends_the_grant_at_once(ctx, hospital_admin):
    grant = ctx.break_glass(ctx.er_physician)
    er = ctx.headers(ctx.er_physician)
    assert _summary(ctx, er) == 200
    assert 'id="bg-banner"' in ctx.client.get("/patients", headers=er).text
    r = ctx.client.post(f"/api/v1/break-glass/{grant['id']}/review", headers=hospital_admin,
                        json={"disposition": "inappropriate", "note": "搬送記録なし"})
    assert r.status_code == 200
    assert r.json()["active"] is False and r.json()["revoked_at"] is not None
    assert _summary(ctx, er) == 404
    assert 'id="bg-banner"' not in ctx.client.get("/patients", headers=er).text, "the grant's banner is gone"


def test_a_follow_up_review_leaves_the_grant_running(ctx, hospital_admin):
    grant = ctx.break_glass(ctx.er_physician)
    r = ctx.client.post(f"/api/v1/break-glass/{grant['id']}/review", headers=hospital_admin,
                        json={"disposition": "needs_follow_up"})
    assert r.json()["active"] is True and r.json()["revoked_at"] is None
    assert _summary(ctx, ctx.headers(ctx.er_physician)) == 200


def test_the_holders_admin_revokes_a_running_grant_and_the_revocation_is_audited(ctx, hospital_admin):
    grant = ctx.break_glass(ctx.er_physician)
    path = f"/api/v1/break-glass/{grant['id']}/revoke"
    assert ctx.client.post(path, headers=ctx.headers(ctx.world.clinic_admin)).status_code == 404
    assert ctx.client.post(path, headers=ctx.headers(ctx.world.physician)).status_code == 403
    r = ctx.client.post(path, headers=hospital_admin)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["revoked_by"] is not None
    assert _summary(ctx, ctx.headers(ctx.er_physician)) == 404
    assert ctx.client.post(path, headers=hospital_admin).status_code == 409
    ctx.db.expire_all()
    row = ctx.db.scalars(select(AuditEvent).where(AuditEvent.event == "break_glass.revoke")).one()
    assert (row.action, row.decision, row.reason, str(row.grant_id)) == (
        "break_glass_review", "allow", "revoked", grant["id"])
    # Still waiting for its review: revoking is not reviewing.
    queue = ctx.client.get("/api/v1/break-glass/reviews", headers=hospital_admin).json()
    assert [g["id"] for g in queue] == [grant["id"]]


def test_a_region_admin_revokes_any_grant(ctx, keyring):
    region = make_user(ctx.db, ctx.world.other_office, profession="coordinator", role="region_admin",
                       keyring=keyring)
    grant = ctx.break_glass(ctx.er_physician)
    r = ctx.client.post(f"/api/v1/break-glass/{grant['id']}/revoke", headers=ctx.headers(region))
    assert r.status_code == 200 and r.json()["active"] is False


def test_a_revoked_holder_cannot_break_the_glass_again_on_that_patient(ctx, hospital_admin):
    grant = ctx.break_glass(ctx.er_physician)
    revoked = ctx.client.post(f"/api/v1/break-glass/{grant['id']}/revoke", headers=hospital_admin)
    assert revoked.status_code == 200
    er = ctx.headers(ctx.er_physician)
    again = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/break-glass", headers=er, json=REQUEST)
    assert again.status_code == 403 and "山田" not in again.text
    assert [str(g.id) for g in ctx.db.scalars(select(BreakGlassGrant))] == [grant["id"]]
    ctx.db.expire_all()
    denied = ctx.db.scalars(select(AuditEvent.reason).where(AuditEvent.action == "break_glass",
                                                           AuditEvent.decision == "deny")).all()
    assert denied == ["grant_revoked"]
