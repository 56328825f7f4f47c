"""TOTP: enrolment, required at sign-in once enabled, single-use codes, ±1 step, enrolment gate for admins."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp

from renkei.auth import enrolment, totp
from renkei.auth.dependencies import ActorDep
from renkei.db.types import utcnow
from renkei.directory.models import User
from tests.auth.support import api_login, away_from_step_boundary, bearer
from tests.factories import PASSWORD, TOTP_SECRET, auth_headers, enrol_totp, make_org, make_user

SECRET = pyotp.TOTP(TOTP_SECRET)


def _code(step_offset: int) -> str:
    return SECRET.at(int(time.time()) + 30 * step_offset)


def test_enrolment_then_confirmation_turns_two_factor_on(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    r = client.post("/api/v1/auth/totp/enrol", headers=headers)
    assert r.status_code == 200, r.text
    secret, uri = r.json()["secret"], r.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/Renkei:") and f"secret={secret}" in uri and "issuer=Renkei" in uri
    db.expire_all()
    stored = db.get(User, user.id)
    assert stored.totp_enabled is False and secret.encode() not in stored.totp_secret

    wrong = client.post("/api/v1/auth/totp/confirm", headers=headers, json={"code": "000000"})
    if pyotp.TOTP(secret).verify("000000", valid_window=1):
        wrong = client.post("/api/v1/auth/totp/confirm", headers=headers, json={"code": "999999"})
    assert wrong.status_code == 422
    assert wrong.json()["fields"][0]["path"] == "/code"

    away_from_step_boundary()
    assert client.post("/api/v1/auth/totp/confirm", headers=headers,
                       json={"code": pyotp.TOTP(secret).now()}).status_code == 204
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["totp_enabled"] is True and me["totp_required"] is True
    assert client.post("/api/v1/auth/totp/enrol", headers=headers).status_code == 403


def test_sign_in_needs_the_code_once_two_factor_is_on(client, db, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    r = api_login(client, user.email)
    assert r.status_code == 401
    assert r.json()["error"] == "otp_required"
    assert "access_token" not in r.text
    away_from_step_boundary()
    assert api_login(client, user.email, otp=_code(0)).status_code == 200


def test_missing_code_reveals_nothing_when_the_password_is_wrong(client, db, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    r = api_login(client, user.email, "not-the-password-2026")
    assert r.status_code == 401 and r.json()["error"] == "invalid_credentials"


def test_a_code_works_only_once(client, db, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    away_from_step_boundary()
    code = _code(0)
    assert api_login(client, user.email, otp=code).status_code == 200
    replay = api_login(client, user.email, otp=code)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_credentials"
    # An older, still-in-window code is refused too: steps only move forward.
    assert api_login(client, user.email, otp=_code(-1)).status_code == 401


def test_codes_one_step_off_are_accepted_and_two_steps_off_refused(client, db, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    away_from_step_boundary()
    assert api_login(client, user.email, otp=_code(-2)).status_code == 401
    assert api_login(client, user.email, otp=_code(+2)).status_code == 401
    assert api_login(client, user.email, otp=_code(-1)).status_code == 200
    assert api_login(client, user.email, otp=_code(+1)).status_code == 200


def test_step_window_at_fixed_times():
    t0 = 1_800_000_000.0
    at = lambda offset: SECRET.at(int(t0) + 30 * offset)  # noqa: E731
    current = int(t0 // 30)
    assert totp.accept(TOTP_SECRET, at(0), None, now=t0) == current
    assert totp.accept(TOTP_SECRET, at(-1), None, now=t0) == current - 1
    assert totp.accept(TOTP_SECRET, at(1), None, now=t0) == current + 1
    assert totp.accept(TOTP_SECRET, at(-2), None, now=t0) is None
    assert totp.accept(TOTP_SECRET, at(2), None, now=t0) is None
    assert totp.accept(TOTP_SECRET, at(0), current, now=t0) is None
    assert totp.accept(TOTP_SECRET, at(1), current, now=t0) == current + 1
    assert totp.accept(TOTP_SECRET, "12345", None, now=t0) is None
    assert totp.accept(TOTP_SECRET, "abcdef", None, now=t0) is None


def test_wrong_codes_count_towards_the_account_lockout(client, db, keyring, settings):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    away_from_step_boundary()
    for _ in range(settings.login_max_failures):
        assert api_login(client, user.email, otp=_code(-3)).status_code == 401
    assert api_login(client, user.email, otp=_code(0)).status_code == 429


def test_admin_without_two_factor_may_only_enrol_see_me_and_sign_out(client, db, settings, keyring):
    admin = make_user(db, make_org(db), role="org_admin")
    pair = api_login(client, admin.email).json()
    headers = bearer(pair["access_token"])
    for method, path in (("GET", "/api/v1/patients"), ("GET", "/api/v1/organisations"),
                         ("GET", f"/api/v1/organisations/{admin.organisation_id}/staff"),
                         ("POST", "/api/v1/auth/password")):
        r = client.request(method, path, headers=headers, json={} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "totp_enrolment_required"
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["totp_required"] is True

    code = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    enrolled = client.post("/api/v1/auth/totp/enrol", headers=headers, json={"enrolment_code": code})
    secret = enrolled.json()["secret"]
    away_from_step_boundary()
    assert client.post("/api/v1/auth/totp/confirm", headers=headers,
                       json={"code": pyotp.TOTP(secret).now()}).status_code == 204
    assert client.get("/api/v1/patients", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204


def test_admin_without_two_factor_can_sign_out(client, db):
    admin = make_user(db, make_org(db), role="org_admin")
    headers = bearer(api_login(client, admin.email).json()["access_token"])
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_members_need_no_second_factor_by_default(client, db, settings, keyring):
    member = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, member)
    assert client.get("/api/v1/patients", headers=headers).status_code == 200


def test_require_2fa_all_gates_every_account_until_enrolled(client_with, db, settings, keyring):
    client = client_with(require_2fa="all")
    member = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, member)
    r = client.get("/api/v1/patients", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "totp_enrolment_required"
    assert client.get("/api/v1/me", headers=headers).json()["totp_required"] is True
    enrol_totp(db, keyring, member)
    assert client.get("/api/v1/patients", headers=headers).status_code == 200


def test_two_factor_cannot_be_turned_off_where_it_is_required(client, db, settings, keyring):
    admin = make_user(db, make_org(db), role="org_admin", keyring=keyring)
    headers = auth_headers(db, settings, keyring, admin)
    away_from_step_boundary()
    r = client.post("/api/v1/auth/totp/disable", headers=headers,
                    json={"password": PASSWORD, "otp": _code(0)})
    assert r.status_code == 403
    db.expire_all()
    assert db.get(User, admin.id).totp_enabled is True


def test_reauthentication_is_throttled_like_sign_in(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    enrol_totp(db, keyring, user)
    headers = auth_headers(db, settings, keyring, user)
    for _ in range(settings.login_max_failures):
        r = client.post("/api/v1/auth/totp/disable", headers=headers, json={"password": "guess-guess-guess"})
        assert r.status_code == 401
    away_from_step_boundary()
    r = client.post("/api/v1/auth/totp/disable", headers=headers,
                    json={"password": PASSWORD, "otp": _code(0)})
    assert r.status_code == 429
    assert api_login(client, user.email, otp=_code(0)).status_code == 429


def test_enrolment_gate_matches_paths_exactly_so_new_routes_below_them_stay_closed(client, db):
    @client.app.get("/api/v1/me/export")
    def export_everything(actor: ActorDep) -> dict[str, bool]:
        return {"exported": True}

    @client.app.post("/api/v1/auth/totp/enrol-for/{user_id}")
    def enrol_someone_else(user_id: str, actor: ActorDep) -> dict[str, bool]:
        return {"enrolled": True}

    admin = make_user(db, make_org(db), role="org_admin")
    headers = bearer(api_login(client, admin.email).json()["access_token"])
    assert client.get("/api/v1/me/export", headers=headers).status_code == 403
    assert client.post(f"/api/v1/auth/totp/enrol-for/{admin.id}", headers=headers).status_code == 403
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def _admin_without_two_factor(client, db):
    admin = make_user(db, make_org(db), role="org_admin")
    return admin, bearer(api_login(client, admin.email).json()["access_token"])


def test_an_admin_cannot_enrol_with_the_password_alone(client, db, keyring):
    admin, headers = _admin_without_two_factor(client, db)
    for body in (None, {}, {"enrolment_code": ""}, {"enrolment_code": "0000-0000"}):
        r = client.post("/api/v1/auth/totp/enrol", headers=headers, json=body)
        assert r.status_code == 422, r.text
        assert [f["path"] for f in r.json()["fields"]] == ["/enrolment_code"]
        assert "secret" not in r.json()
    db.expire_all()
    assert db.get(User, admin.id).totp_secret is None


def test_the_enrolment_code_an_admin_handed_over_starts_enrolment_and_is_spent_by_it(client, db, keyring):
    admin, headers = _admin_without_two_factor(client, db)
    code = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    assert re.fullmatch(r"\d{4}-\d{4}", code)
    # Typed on a tablet: full-width digits and no hyphen are the same code.
    typed = code.replace("-", "").translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    r = client.post("/api/v1/auth/totp/enrol", headers=headers, json={"enrolment_code": typed})
    assert r.status_code == 200, r.text
    away_from_step_boundary()
    assert client.post("/api/v1/auth/totp/confirm", headers=headers,
                       json={"code": pyotp.TOTP(r.json()["secret"]).now()}).status_code == 204
    db.expire_all()
    stored = db.get(User, admin.id)
    assert stored.totp_enabled
    assert stored.totp_enrolment_digest is None and stored.totp_enrolment_expires_at is None


def test_an_expired_or_replaced_enrolment_code_is_refused(client, db, keyring):
    admin, headers = _admin_without_two_factor(client, db)
    first = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    second = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    if first != second:
        r = client.post("/api/v1/auth/totp/enrol", headers=headers, json={"enrolment_code": first})
        assert r.status_code == 422, "a new code replaces the earlier one"
    admin.totp_enrolment_expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    r = client.post("/api/v1/auth/totp/enrol", headers=headers, json={"enrolment_code": second})
    assert r.status_code == 422 and "expired" in r.json()["fields"][0]["message_en"]


def test_wrong_enrolment_codes_count_towards_the_account_lockout(client, db, keyring, settings):
    admin, headers = _admin_without_two_factor(client, db)
    code = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    wrong = "1111-1111" if code != "1111-1111" else "2222-2222"
    for _ in range(settings.login_max_failures):
        assert client.post("/api/v1/auth/totp/enrol", headers=headers,
                           json={"enrolment_code": wrong}).status_code == 422
    r = client.post("/api/v1/auth/totp/enrol", headers=headers, json={"enrolment_code": code})
    assert r.status_code == 429
    assert api_login(client, admin.email).status_code == 429, "the same lockout as sign-in"


def test_a_member_turns_two_factor_off_with_password_and_code_and_then_signs_in_without_one(
    client, db, settings, keyring,
):
    member = make_user(db, make_org(db))
    enrol_totp(db, keyring, member)
    headers = auth_headers(db, settings, keyring, member)
    away_from_step_boundary()
    r = client.post("/api/v1/auth/totp/disable", headers=headers,
                    json={"password": PASSWORD, "otp": _code(0)})
    assert r.status_code == 204, r.text
    db.expire_all()
    stored = db.get(User, member.id)
    assert (stored.totp_enabled, stored.totp_secret, stored.totp_last_step) == (False, None, None)
    assert client.get("/api/v1/me", headers=headers).json()["totp_enabled"] is False
    assert api_login(client, member.email).status_code == 200, "no code needed any more"
