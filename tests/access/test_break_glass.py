"""Break-the-glass: exact lookup first, a reason and the password, read-only emergency scope, expiry,
notifications to the team and the requester's administrators, and the review queue."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.access.models import BreakGlassGrant
from renkei.app import create_app
from renkei.audit.models import AuditEvent
from renkei.db.types import today_jst
from renkei.notify.models import Notification
from renkei.patients.service import age_on
from tests.access.support import Ctx
from tests.factories import PASSWORD, enrol_totp, make_user, next_totp

LOOKUP = {"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"}
REQUEST = {"reason_code": "emergency_transport", "reason": "自宅で意識消失、救急搬送", "password": PASSWORD,
           "confirm": True}


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


def _lookup(ctx: Ctx, headers: dict[str, str]) -> None:
    r = ctx.client.post("/api/v1/patients/lookup", headers=headers, json=LOOKUP)
    assert [p["id"] for p in r.json()] == [str(ctx.patient_id)]


def _request(ctx: Ctx, headers: dict[str, str], **body: object):
    return ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/break-glass", headers=headers, json=REQUEST | body)


def _lifetime(grant: dict) -> timedelta:
    return datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(grant["granted_at"])


def _audit_rows(ctx: Ctx, **where: object) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.patient_id == ctx.patient_id)
    for column, value in where.items():
        q = q.where(getattr(AuditEvent, column) == value)
    return list(ctx.db.scalars(q.order_by(AuditEvent.seq)))


def test_break_glass_needs_an_exact_lookup_of_that_patient_first(ctx):
    er = ctx.headers(ctx.er_physician)
    before = _request(ctx, er)
    assert before.status_code == 404 and "山田" not in before.text
    _lookup(ctx, er)
    assert _request(ctx, er).status_code == 201


def test_grant_is_read_only_to_the_emergency_scope_and_expires(ctx, settings):
    er = ctx.headers(ctx.er_physician)
    _lookup(ctx, er)
    grant = _request(ctx, er).json()
    assert grant["scope"] == ["acp", "emergency"] and grant["active"] is True
    assert _lifetime(grant) == timedelta(minutes=settings.break_glass_minutes)
    pid = ctx.patient_id
    assert ctx.client.get(f"/api/v1/patients/{pid}/summary", headers=er).status_code == 200
    assert ctx.client.get(f"/api/v1/patients/{pid}", headers=er).status_code == 404
    assert ctx.client.get(f"/api/v1/patients/{pid}/team", headers=er).status_code == 404
    post = ctx.client.post(f"/api/v1/patients/{pid}/entries", headers=er,
                           json={"sheet": "message", "data": {"text": "書けてはいけない"}})
    assert post.status_code == 404
    rows = _audit_rows(ctx, action="read_emergency", decision="allow", reason="break_glass")
    assert rows and all(str(r.grant_id) == grant["id"] for r in rows)
    ctx.expire_grants(ctx.er_physician)
    assert ctx.client.get(f"/api/v1/patients/{pid}/summary", headers=er).status_code == 404


def test_the_grant_lifetime_follows_the_setting(settings, connection, db, keyring, world):
    short = settings.model_copy(update={"break_glass_minutes": 30})
    assert short.break_glass_minutes != settings.break_glass_minutes
    with TestClient(create_app(short, bind=connection), base_url="http://testserver") as client:
        ctx = Ctx(client, db, short, keyring, world)
        grant = ctx.break_glass(ctx.er_physician)
    assert _lifetime(grant) == timedelta(minutes=30)
    row = db.get(BreakGlassGrant, uuid.UUID(grant["id"]))
    assert row.expires_at - row.granted_at == timedelta(minutes=30)


def test_break_glass_requires_a_reason(ctx):
    er = ctx.headers(ctx.er_physician)
    _lookup(ctx, er)
    for body in ({"reason": "   "}, {"reason_code": "boredom"}):
        r = _request(ctx, er, **body)
        assert r.status_code == 422
    missing = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/break-glass", headers=er,
                              json={"reason_code": "other", "password": PASSWORD})
    assert missing.status_code == 422 and missing.json()["fields"][0]["path"] == "/reason"


def test_wrong_password_is_refused_and_the_attempt_stays_on_record(ctx):
    er = ctx.headers(ctx.er_physician)
    _lookup(ctx, er)
    r = _request(ctx, er, password="not-the-password-at-all")
    assert r.status_code == 403 and r.json()["error"] == "reauthentication_failed"
    assert r.json()["fields"][0]["path"] == "/password"
    assert ctx.db.scalars(select(BreakGlassGrant)).all() == []
    denied = _audit_rows(ctx, action="break_glass", decision="deny")
    assert [row.reason for row in denied] == ["reauth_failed"]


def test_enrolled_totp_is_required_as_well(ctx, keyring):
    enrol_totp(ctx.db, keyring, ctx.er_physician)
    er = ctx.headers(ctx.er_physician)
    _lookup(ctx, er)
    r = _request(ctx, er)
    assert r.status_code == 403 and r.json()["fields"][0]["path"] == "/otp"
    assert _request(ctx, er, otp=next_totp(ctx.db, ctx.er_physician)).status_code == 201


def test_only_physicians_and_nurses_may_break_the_glass(ctx):
    pharmacist = make_user(ctx.db, ctx.hospital, profession="pharmacist")
    headers = ctx.headers(pharmacist)
    _lookup(ctx, headers)
    r = _request(ctx, headers)
    assert r.status_code == 403 and "山田" not in r.text


def test_a_team_member_with_access_does_not_need_the_glass(ctx):
    doctor = ctx.headers(ctx.world.physician)
    assert _request(ctx, doctor).status_code == 409
    ctx.withdraw()
    # After withdrawal even the team's own physician reaches the emergency scope only this way.
    assert _request(ctx, doctor).status_code == 201


def test_grant_notifies_attending_physician_care_manager_and_the_requesters_admins(ctx, keyring):
    hospital_admin = make_user(ctx.db, ctx.hospital, profession="nurse", role="org_admin", keyring=keyring)
    grant = ctx.break_glass(ctx.er_physician)
    notified = ctx.db.scalars(select(Notification).where(Notification.kind == "break_glass")).all()
    assert {n.user_id for n in notified} == {ctx.world.physician.id, ctx.care_manager.id, hospital_admin.id}
    assert all(n.urgent and n.patient_id == ctx.patient_id and grant["id"] in n.refs for n in notified)
    inbox = ctx.client.get("/api/v1/notifications", headers=ctx.headers(ctx.world.physician)).json()
    assert inbox[0]["kind"] == "break_glass" and inbox[0]["refs"] == {"grant_id": grant["id"]}


def test_grants_wait_in_the_review_queue_until_an_admin_records_a_disposition(ctx, keyring):
    hospital_admin = make_user(ctx.db, ctx.hospital, profession="nurse", role="org_admin", keyring=keyring)
    clinic_admin = ctx.headers(ctx.world.clinic_admin)
    region = make_user(ctx.db, ctx.world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    grant = ctx.break_glass(ctx.er_physician)
    admin = ctx.headers(hospital_admin)
    queue = ctx.client.get("/api/v1/break-glass/reviews", headers=admin).json()
    assert [(g["id"], g["reason"], g["user_name"]) for g in queue] == [
        (grant["id"], grant["reason"], ctx.er_physician.name)]
    assert ctx.client.get("/api/v1/break-glass/reviews", headers=clinic_admin).json() == []
    assert [g["id"] for g in ctx.client.get("/api/v1/break-glass/reviews",
                                             headers=ctx.headers(region)).json()] == [grant["id"]]
    assert ctx.client.get("/api/v1/break-glass/reviews", headers=ctx.headers(ctx.er_physician)).status_code == 403
    path = f"/api/v1/break-glass/{grant['id']}/review"
    assert ctx.client.post(path, headers=clinic_admin, json={"disposition": "appropriate"}).status_code == 404
    r = ctx.client.post(path, headers=admin, json={"disposition": "needs_follow_up", "note": "搬送先に確認"})
    assert r.status_code == 200 and r.json()["disposition"] == "needs_follow_up"
    assert r.json()["reviewer_name"] == hospital_admin.name and r.json()["review_note"] == "搬送先に確認"
    assert ctx.client.post(path, headers=admin, json={"disposition": "appropriate"}).status_code == 409
    assert ctx.client.get("/api/v1/break-glass/reviews", headers=admin).json() == []
    reviewed = ctx.client.get("/api/v1/break-glass/reviews?pending=false", headers=admin).json()
    assert reviewed[0]["reviewed_at"] is not None
    assert _audit_rows(ctx, action="break_glass_review", event="break_glass.review")[0].reason == "needs_follow_up"


def test_nobody_reviews_their_own_emergency_access(ctx, keyring):
    admin_doctor = make_user(ctx.db, ctx.hospital, profession="physician", role="org_admin", keyring=keyring)
    grant = ctx.break_glass(admin_doctor, otp=next_totp(ctx.db, admin_doctor))
    r = ctx.client.post(f"/api/v1/break-glass/{grant['id']}/review", headers=ctx.headers(admin_doctor),
                        json={"disposition": "appropriate"})
    assert r.status_code == 403


def test_emergency_pages_find_request_and_review(ctx, keyring):
    er = ctx.headers(ctx.er_physician)
    page = ctx.client.get("/emergency", headers=er)
    assert page.status_code == 200 and "緊急時アクセス" in page.text
    found = ctx.client.post("/emergency/lookup", headers=er, data=LOOKUP)
    # The match is confirmed by sex and age band; the page never shows a name the searcher did not type.
    band = age_on(date(1938, 4, 2), today_jst()) // 10 * 10
    assert found.status_code == 200 and f"女性 · {band}代" in found.text and "山田 花子" not in found.text
    assert f'action="/patients/{ctx.patient_id}/break-glass"' in found.text
    wrong = ctx.client.post(f"/patients/{ctx.patient_id}/break-glass", headers=er,
                            data=REQUEST | {"password": "wrong-password-here"})
    assert wrong.status_code == 403 and "パスワードが正しくありません" in wrong.text
    assert [r.reason for r in _audit_rows(ctx, action="break_glass", decision="deny")] == ["reauth_failed"]
    granted = ctx.client.post(f"/patients/{ctx.patient_id}/break-glass", headers=er, data=REQUEST)
    assert granted.status_code == 201 and "緊急時アクセスを開始しました" in granted.text
    admin = make_user(ctx.db, ctx.hospital, profession="nurse", role="org_admin", keyring=keyring)
    queue = ctx.client.get("/admin/break-glass", headers=ctx.headers(admin))
    assert queue.status_code == 200 and REQUEST["reason"] in queue.text
    grant_id = ctx.db.scalars(select(BreakGlassGrant.id)).one()
    done = ctx.client.post(f"/admin/break-glass/{grant_id}/review", headers=ctx.headers(admin),
                           data={"disposition": "appropriate"}, follow_redirects=False)
    assert done.status_code == 303
    assert ctx.db.get(BreakGlassGrant, grant_id).disposition == "appropriate"


def test_repeated_wrong_passwords_are_throttled_like_sign_in(ctx, settings):
    er = ctx.headers(ctx.er_physician)
    _lookup(ctx, er)
    statuses = [_request(ctx, er, password=f"wrong-password-{n}").status_code
                for n in range(settings.login_max_failures + 1)]
    assert statuses[:settings.login_max_failures] == [403] * settings.login_max_failures
    assert statuses[-1] == 429
    assert _request(ctx, er).status_code == 429  # even the right password, while locked
    reasons = [row.reason for row in _audit_rows(ctx, action="break_glass", decision="deny")]
    assert reasons.count("reauth_failed") == settings.login_max_failures and "reauth_throttled" in reasons
