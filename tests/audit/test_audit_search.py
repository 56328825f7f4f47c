"""Audit search: by action, date range and emergency access as well as actor or patient; organisation
administrators search their own staff's actions only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from renkei.db.types import today_jst
from tests.access.support import Ctx
from tests.factories import auth_headers, make_user


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


@pytest.fixture
def region(ctx):
    user = make_user(ctx.db, ctx.world.other_office, profession="coordinator", role="region_admin",
                     keyring=ctx.keyring)
    return ctx.headers(user)


def _search(ctx: Ctx, headers: dict[str, str], **params: object) -> list[dict]:
    r = ctx.client.get("/api/v1/audit/events", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_org_admin_sees_their_own_staffs_actions_and_no_one_elses(ctx):
    pid = ctx.patient_id
    ctx.client.get(f"/api/v1/patients/{pid}", headers=ctx.headers(ctx.world.physician))
    ctx.client.get(f"/api/v1/patients/{pid}", headers=ctx.headers(ctx.world.nurse))
    clinic_admin = ctx.headers(ctx.world.clinic_admin)
    rows = _search(ctx, clinic_admin, patient_id=str(pid))
    assert rows and {r["organisation_id"] for r in rows} == {str(ctx.world.clinic.id)}
    assert str(ctx.world.nurse.id) not in {r["actor_user_id"] for r in rows}
    assert _search(ctx, clinic_admin, actor_email=ctx.world.nurse.email) == []
    assert _search(ctx, clinic_admin, actor_id=str(ctx.world.nurse.id)) == []
    page = ctx.client.get("/admin/audit", headers=clinic_admin, params={"actor_email": ctx.world.nurse.email})
    assert page.status_code == 200 and ctx.world.nurse.name not in page.text
    assert "自事業所の職員の操作" in page.text


def test_the_search_filters_by_action_and_date_range(ctx, region):
    pid = ctx.patient_id
    ctx.client.get(f"/api/v1/patients/{pid}", headers=ctx.headers(ctx.world.nurse))
    ctx.client.get(f"/api/v1/patients/{pid}/consents", headers=ctx.headers(ctx.world.nurse))
    reads = _search(ctx, region, patient_id=str(pid), action="read_consent")
    assert reads and {r["action"] for r in reads} == {"read_consent"}
    today = today_jst()
    page = ctx.client.get("/admin/audit", headers=region, params={
        "patient_id": str(pid), "action": "read_consent", "since": today.isoformat(),
        "until": today.isoformat()})
    assert page.status_code == 200 and "同意の閲覧" in page.text and ctx.world.nurse.name in page.text
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = ctx.client.get("/admin/audit", headers=region, params={"patient_id": str(pid), "since": tomorrow})
    assert "該当する記録はありません" in later.text
    yesterday = (today - timedelta(days=1)).isoformat()
    earlier = ctx.client.get("/admin/audit", headers=region,
                             params={"patient_id": str(pid), "until": yesterday})
    assert "該当する記録はありません" in earlier.text
    wrong = ctx.client.get("/admin/audit", headers=region, params={"since": tomorrow, "until": yesterday})
    assert 'id="a-until-err"' in wrong.text


@pytest.mark.parametrize(("name", "day"), [("until", "9999-12-31"), ("since", "0001-01-01")])
def test_an_implausible_date_in_the_search_is_marked_on_its_field_not_a_crash(ctx, region, name, day):
    params = {"patient_id": str(ctx.patient_id), name: day}
    page = ctx.client.get("/admin/audit", headers=region, params=params)
    assert page.status_code == 200 and f'id="a-{name}-err"' in page.text


def test_each_emergency_access_links_to_its_own_audit_rows(ctx):
    grant = ctx.break_glass(ctx.er_physician)
    er = ctx.headers(ctx.er_physician)
    summary = ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/summary", headers=er)
    ctx.client.get(f"/api/v1/patients/{ctx.patient_id}", headers=ctx.headers(ctx.world.physician))
    admin = ctx.headers(ctx.hospital_admin)
    rows = _search(ctx, admin, grant_id=grant["id"])
    assert {r["grant_id"] for r in rows} == {grant["id"]}
    seen = {(r["action"], r["request_id"]) for r in rows}
    assert ("read_emergency", summary.headers["x-request-id"]) in seen
    assert "break_glass" in {r["action"] for r in rows}
    page = ctx.client.get("/admin/audit", headers=admin, params={"grant_id": grant["id"]})
    assert page.status_code == 200 and ctx.er_physician.name in page.text
    # Another organisation's administrator finds nothing of it.
    assert _search(ctx, ctx.headers(ctx.world.clinic_admin), grant_id=grant["id"]) == []


def test_members_cannot_search(ctx, db, settings, keyring):
    headers = auth_headers(db, settings, keyring, ctx.world.nurse)
    assert ctx.client.get("/api/v1/audit/events", headers=headers).status_code == 403
