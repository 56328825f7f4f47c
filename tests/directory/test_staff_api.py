"""Staff lifecycle API: an org admin adds, edits, disables and re-enables their own organisation's staff."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.auth.models import AuthSession
from renkei.directory import service as directory_service
from renkei.directory.models import User
from tests.directory.support import api_login, bearer, browser_sign_in
from tests.factories import PASSWORD, auth_headers, enrol_totp, make_user

NEW_PASSWORD = "ひまわり畑を歩く午後の風2026"


def new_staff(**overrides: object) -> dict:
    body = {"email": "Kango.Hanako@Midori.example", "name": "看護 花子", "name_kana": "カンゴ ハナコ",
            "profession": "nurse", "role": "member", "password": NEW_PASSWORD}
    body.update(overrides)
    return body


@pytest.fixture
def admin(client, db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.clinic_admin)


def paths(response) -> list[str]:
    return [f["path"] for f in response.json()["fields"]]


def test_org_admin_adds_a_professional_who_can_then_sign_in(client, db, admin, world):
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(), headers=admin)
    assert r.status_code == 201, r.text
    staff = r.json()
    assert staff["email"] == "kango.hanako@midori.example"
    assert (staff["name"], staff["name_kana"], staff["profession"], staff["role"]) == (
        "看護 花子", "カンゴ ハナコ", "nurse", "member")
    assert staff["organisation_id"] == str(world.clinic.id)
    assert staff["active"] is True and staff["totp_enabled"] is False
    assert "password" not in r.text and "password_hash" not in staff
    login = client.post("/api/v1/auth/login",
                        json={"email": "KANGO.hanako@midori.example", "password": NEW_PASSWORD})
    assert login.status_code == 200, login.text
    me = client.get("/api/v1/me", headers=bearer(login.json())).json()
    assert me["organisation_id"] == str(world.clinic.id) and me["role"] == "member"


def test_half_width_kana_is_stored_full_width_and_romaji_is_refused(client, admin, world):
    url = f"/api/v1/organisations/{world.clinic.id}/staff"
    r = client.post(url, json=new_staff(name_kana="ｶﾝｺﾞ　ﾊﾅｺ"), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["name_kana"] == "カンゴ ハナコ"
    r = client.post(url, json=new_staff(email="other@example.jp", name_kana="Kango Hanako"), headers=admin)
    assert r.status_code == 422
    assert paths(r) == ["/name_kana"]


def test_staff_list_shows_each_accounts_two_factor_state(client, db, admin, world):
    member = make_user(db, world.clinic, profession="nurse", name="一般 職員")
    r = client.get(f"/api/v1/organisations/{world.clinic.id}/staff", headers=admin)
    assert r.status_code == 200
    by_id = {s["id"]: s for s in r.json()}
    assert set(by_id) == {str(world.physician.id), str(world.clinic_admin.id), str(member.id)}
    assert by_id[str(world.clinic_admin.id)]["totp_enabled"] is True
    assert by_id[str(member.id)]["totp_enabled"] is False
    assert all(s["organisation_id"] == str(world.clinic.id) for s in r.json())


def test_org_admin_edits_name_kana_profession_email_and_role(client, db, admin, world):
    r = client.patch(f"/api/v1/staff/{world.physician.id}", headers=admin, json={
        "name": "医師 一朗", "name_kana": "イシ イチロウ", "profession": "dentist",
        "email": "Ichiro@Clinic.example", "role": "org_admin"})
    assert r.status_code == 200, r.text
    db.refresh(world.physician)
    doc = world.physician
    assert (doc.name, doc.name_kana, doc.profession, doc.email, doc.role) == (
        "医師 一朗", "イシ イチロウ", "dentist", "ichiro@clinic.example", "org_admin")
    assert client.get(f"/api/v1/staff/{world.physician.id}", headers=admin).json()["role"] == "org_admin"
    login = client.post("/api/v1/auth/login", json={"email": "ichiro@clinic.example", "password": PASSWORD})
    assert login.status_code == 200, login.text


def test_patch_changes_only_the_fields_sent_and_null_kana_clears_it(client, db, admin, world):
    client.patch(f"/api/v1/staff/{world.physician.id}", headers=admin, json={"name_kana": "イシ"})
    r = client.patch(f"/api/v1/staff/{world.physician.id}", headers=admin, json={"name_kana": None})
    assert r.status_code == 200
    assert r.json()["name_kana"] is None
    assert r.json()["name"] == "医師 一郎" and r.json()["profession"] == "physician"


def test_patch_refuses_null_for_a_required_field(client, db, admin, world):
    r = client.patch(f"/api/v1/staff/{world.physician.id}", headers=admin, json={"name": None, "email": None})
    assert r.status_code == 422
    assert sorted(paths(r)) == ["/email", "/name"]
    db.refresh(world.physician)
    assert world.physician.name == "医師 一郎"


def test_duplicate_email_is_refused_naming_email_whatever_its_case(client, db, admin, world):
    taken = world.physician.email.upper()
    url = f"/api/v1/organisations/{world.clinic.id}/staff"
    r = client.post(url, json=new_staff(email=taken), headers=admin)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_input" and paths(r) == ["/email"]
    other = make_user(db, world.clinic, profession="nurse")
    r = client.patch(f"/api/v1/staff/{other.id}", json={"email": taken}, headers=admin)
    assert r.status_code == 422 and paths(r) == ["/email"]
    assert db.scalars(select(User).where(User.email == world.physician.email)).one().id == world.physician.id


def test_email_taken_by_a_concurrent_request_is_still_a_422_naming_email(
    client, db, admin, world, monkeypatch
):
    # Simulate the race the pre-check cannot see: the unique constraint must answer in its place.
    monkeypatch.setattr(directory_service, "_email_taken", lambda *args, **kwargs: False)
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(email=world.nurse.email),
                    headers=admin)
    assert r.status_code == 422 and paths(r) == ["/email"]
    r = client.patch(f"/api/v1/staff/{world.physician.id}", json={"email": world.nurse.email}, headers=admin)
    assert r.status_code == 422 and paths(r) == ["/email"]
    db.refresh(world.physician)
    assert world.physician.email != world.nurse.email


def test_weak_password_is_refused_naming_password(client, db, admin, world):
    for weak in ("short", "password1234", "kango.hanako-2026!"):
        r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff",
                        json=new_staff(email="kango.hanako@midori.example", password=weak), headers=admin)
        assert r.status_code == 422, weak
        assert set(paths(r)) == {"/password"}, weak
        assert weak not in r.text
    assert db.scalars(select(User).where(User.email == "kango.hanako@midori.example")).first() is None


def test_unknown_field_is_refused(client, admin, world):
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(is_superuser=True),
                    headers=admin)
    assert r.status_code == 422 and paths(r) == ["/is_superuser"]
    r = client.patch(f"/api/v1/staff/{world.physician.id}", json={"organisation_id": str(world.nursing.id)},
                     headers=admin)
    assert r.status_code == 422 and paths(r) == ["/organisation_id"]


def test_member_cannot_list_or_create_staff(client, db, settings, keyring, world):
    member = auth_headers(db, settings, keyring, world.physician)
    r = client.get(f"/api/v1/organisations/{world.clinic.id}/staff", headers=member)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(), headers=member)
    assert r.status_code == 403
    assert client.post(f"/api/v1/staff/{world.clinic_admin.id}/disable", headers=member).status_code == 403
    db.refresh(world.clinic_admin)
    assert world.clinic_admin.active is True


def test_org_admin_gets_404_for_another_organisations_staff_and_learns_nothing(client, db, admin, world):
    nurse = world.nurse
    attempts = [
        ("GET", f"/api/v1/organisations/{world.nursing.id}/staff", None),
        ("POST", f"/api/v1/organisations/{world.nursing.id}/staff", new_staff()),
        ("GET", f"/api/v1/staff/{nurse.id}", None),
        ("PATCH", f"/api/v1/staff/{nurse.id}", {"name": "乗っ取り"}),
        ("POST", f"/api/v1/staff/{nurse.id}/disable", None),
        ("POST", f"/api/v1/staff/{nurse.id}/enable", None),
        ("POST", f"/api/v1/staff/{nurse.id}/reset-2fa", None),
    ]
    for method, url, body in attempts:
        r = client.request(method, url, json=body, headers=admin)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json() == {"error": "not_found", "detail": "Not found", "fields": []}
    db.refresh(nurse)
    assert nurse.active and nurse.name == "看護 花子"
    assert db.scalars(select(User).where(User.email == "kango.hanako@midori.example")).first() is None


def test_unknown_staff_id_and_other_org_staff_get_the_same_404(client, admin, world):
    unknown = client.get("/api/v1/staff/00000000-0000-4000-8000-000000000000", headers=admin)
    theirs = client.get(f"/api/v1/staff/{world.nurse.id}", headers=admin)
    assert unknown.status_code == theirs.status_code == 404
    assert unknown.json() == theirs.json()


def test_org_admin_cannot_grant_region_admin(client, db, admin, world):
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(role="region_admin"),
                    headers=admin)
    assert r.status_code == 403
    r = client.patch(f"/api/v1/staff/{world.physician.id}", json={"role": "region_admin"}, headers=admin)
    assert r.status_code == 403
    db.refresh(world.physician)
    assert world.physician.role == "member"


def test_org_admin_cannot_demote_or_disable_a_region_admin_of_the_same_organisation(
    client, db, keyring, admin, world
):
    region = make_user(db, world.clinic, profession="coordinator", role="region_admin", keyring=keyring)
    for method, url, body in (("PATCH", f"/api/v1/staff/{region.id}", {"role": "member"}),
                              ("POST", f"/api/v1/staff/{region.id}/disable", None),
                              ("POST", f"/api/v1/staff/{region.id}/reset-2fa", None)):
        assert client.request(method, url, json=body, headers=admin).status_code == 403, url
    db.refresh(region)
    assert (region.role, region.active, region.totp_enabled) == ("region_admin", True, True)


def test_nobody_can_disable_themselves_or_change_their_own_role(client, db, admin, world):
    me = world.clinic_admin
    r = client.post(f"/api/v1/staff/{me.id}/disable", headers=admin)
    assert r.status_code == 403
    r = client.patch(f"/api/v1/staff/{me.id}", json={"role": "member"}, headers=admin)
    assert r.status_code == 403
    r = client.post(f"/api/v1/staff/{me.id}/reset-2fa", headers=admin)
    assert r.status_code == 403
    db.refresh(me)
    assert (me.active, me.role, me.totp_enabled) == (True, "org_admin", True)
    r = client.patch(f"/api/v1/staff/{me.id}", json={"name": "管理 太郎", "role": "org_admin"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "管理 太郎"


def test_region_admin_manages_staff_of_any_organisation(client, db, settings, keyring, world):
    region = make_user(db, world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    headers = auth_headers(db, settings, keyring, region)
    r = client.get(f"/api/v1/organisations/{world.nursing.id}/staff", headers=headers)
    assert r.status_code == 200
    assert {s["id"] for s in r.json()} == {str(world.nurse.id), str(world.nursing_admin.id)}
    r = client.patch(f"/api/v1/staff/{world.nurse.id}", json={"role": "region_admin"}, headers=headers)
    assert r.status_code == 200 and r.json()["role"] == "region_admin"


def test_adding_staff_to_an_unknown_organisation_is_404(client, db, settings, keyring, world):
    region = make_user(db, world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    r = client.post("/api/v1/organisations/00000000-0000-4000-8000-000000000000/staff", json=new_staff(),
                    headers=auth_headers(db, settings, keyring, region))
    assert r.status_code == 404


def test_disabled_account_gets_the_same_401_as_a_wrong_password(client, db, admin, world):
    wrong = client.post("/api/v1/auth/login",
                        json={"email": world.physician.email, "password": "not-the-password"})
    assert client.post(f"/api/v1/staff/{world.physician.id}/disable", headers=admin).status_code == 200
    disabled = api_login(client, db, world.physician)
    assert wrong.status_code == disabled.status_code == 401
    assert disabled.json() == wrong.json()
    assert disabled.json()["error"] == "invalid_credentials"
    assert disabled.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")


def test_disabling_ends_existing_tokens_and_cookie_sessions_on_their_next_request(
    client, app, db, admin, world
):
    tokens = api_login(client, db, world.physician).json()
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 200
    with TestClient(app, base_url="http://testserver") as browser:
        browser_sign_in(browser, db, world.physician)
        assert browser.get("/api/v1/me").status_code == 200

        r = client.post(f"/api/v1/staff/{world.physician.id}/disable", headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False and r.json()["disabled_at"]

        assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
        refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 401
        assert browser.get("/api/v1/me").status_code == 401
        page = browser.get("/patients", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
    sessions = db.scalars(select(AuthSession).where(AuthSession.user_id == world.physician.id)).all()
    assert sessions and all(s.revoked_at is not None for s in sessions)


def test_reenabling_lets_the_professional_sign_in_again_but_old_tokens_stay_dead(client, db, admin, world):
    old = api_login(client, db, world.physician).json()
    client.post(f"/api/v1/staff/{world.physician.id}/disable", headers=admin)
    r = client.post(f"/api/v1/staff/{world.physician.id}/enable", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True and r.json()["disabled_at"] is None
    fresh = api_login(client, db, world.physician)
    assert fresh.status_code == 200, fresh.text
    assert client.get("/api/v1/me", headers=bearer(fresh.json())).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401


def test_reset_2fa_clears_the_authenticator_and_signs_the_person_out(client, db, keyring, admin, world):
    other_admin = make_user(db, world.clinic, profession="nurse", role="org_admin", keyring=keyring)
    tokens = api_login(client, db, other_admin).json()
    r = client.post(f"/api/v1/staff/{other_admin.id}/reset-2fa", headers=admin)
    assert r.status_code == 200 and r.json()["totp_enabled"] is False
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
    db.refresh(other_admin)
    assert other_admin.totp_secret is None
    # Signing in again works without a code, but an admin must enrol before doing anything else.
    again = client.post("/api/v1/auth/login", json={"email": other_admin.email, "password": PASSWORD})
    assert again.status_code == 200, again.text
    blocked = client.get(f"/api/v1/organisations/{world.clinic.id}/staff", headers=bearer(again.json()))
    assert blocked.status_code == 403
    # Enrolling again takes the one-time code the resetting admin was shown, not the password alone.
    code = r.json()["enrolment_code"]
    assert re.fullmatch(r"\d{4}-\d{4}", code) and r.json()["enrolment_code_expires_at"]
    enrol = "/api/v1/auth/totp/enrol"
    assert client.post(enrol, headers=bearer(again.json())).status_code == 422
    assert client.post(enrol, headers=bearer(again.json()), json={"enrolment_code": code}).status_code == 200


def test_staff_list_and_reads_never_show_an_enrolment_code(client, db, keyring, admin, world):
    other_admin = make_user(db, world.clinic, profession="nurse", role="org_admin", keyring=keyring)
    code = client.post(f"/api/v1/staff/{other_admin.id}/reset-2fa", headers=admin).json()["enrolment_code"]
    listed = client.get(f"/api/v1/organisations/{world.clinic.id}/staff", headers=admin)
    one = client.get(f"/api/v1/staff/{other_admin.id}", headers=admin)
    for r in (listed, one):
        assert r.status_code == 200 and code not in r.text and "enrolment_code" not in r.text


@pytest.mark.parametrize(("role", "gets_code"), [("org_admin", True), ("member", False)])
def test_a_new_account_gets_an_enrolment_code_only_where_two_factor_will_be_required(
    client, admin, world, role, gets_code,
):
    r = client.post(f"/api/v1/organisations/{world.clinic.id}/staff", json=new_staff(role=role),
                    headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["enrolment_code"] is not None) is gets_code


def test_a_new_enrolment_code_replaces_the_old_one_and_is_refused_once_enrolled(
    client, db, keyring, admin, world,
):
    member = world.physician
    first = client.post(f"/api/v1/staff/{member.id}/enrolment-code", headers=admin)
    second = client.post(f"/api/v1/staff/{member.id}/enrolment-code", headers=admin)
    assert first.status_code == second.status_code == 200
    db.refresh(member)
    assert member.totp_enrolment_digest is not None
    enrol_totp(db, keyring, member)
    again = client.post(f"/api/v1/staff/{member.id}/enrolment-code", headers=admin)
    assert again.status_code == 409
    own = client.post(f"/api/v1/staff/{world.clinic_admin.id}/enrolment-code", headers=admin)
    assert own.status_code == 403
    outsider = client.post(f"/api/v1/staff/{world.nurse.id}/enrolment-code", headers=admin)
    assert outsider.status_code == 404


def test_staff_endpoints_need_a_signed_in_admin(client, world):
    assert client.get(f"/api/v1/organisations/{world.clinic.id}/staff").status_code == 401
    assert client.post(f"/api/v1/staff/{world.physician.id}/disable").status_code == 401
