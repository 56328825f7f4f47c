"""Staff pages: an org admin signed in on a tablet adds, edits, disables and resets staff."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.directory import service as directory_service
from renkei.directory.models import Profession, Role, User
from renkei.web.i18n import LOCALES_DIR
from renkei.web.templating import TEMPLATES_DIR
from tests.directory.support import audit_form, browser_sign_in, csrf_of
from tests.factories import PASSWORD, make_user

NEW_PASSWORD = "ひまわり畑を歩く午後の風2026"


@pytest.fixture
def browser(client, db, world) -> TestClient:
    """The test client, signed in through /login as the clinic's admin (password + TOTP)."""
    browser_sign_in(client, db, world.clinic_admin)
    return client


def add_form(**overrides: str) -> dict[str, str]:
    form = {"name": "薬剤 三郎", "name_kana": "ヤクザイ サブロウ", "email": "saburo@midori.example",
            "profession": "pharmacist", "role": "member", "password": NEW_PASSWORD}
    form.update(overrides)
    return form


def test_staff_page_lists_my_staff_with_state_and_nothing_of_other_organisations(browser, db, world):
    r = browser.get("/admin/staff")
    assert r.status_code == 200
    html = r.text
    assert "医師 一郎" in html and world.physician.email in html
    assert world.clinic.name in html
    assert world.nurse.name not in html and world.nurse.email not in html
    assert "設定済み" in html and "未設定" in html
    assert "医師" in html and "事業所管理者" in html
    assert html.count(f'href="/admin/staff/{world.physician.id}/disable"') == 1
    assert f'/admin/staff/{world.clinic_admin.id}/disable' not in html


def test_staff_pages_label_every_field_and_keep_tables_inside_a_scroll_wrapper(browser, world):
    for url in ("/admin/staff", f"/admin/staff/{world.physician.id}"):
        audit = audit_form(browser.get(url).text)
        assert audit.fields, url
        assert audit.unlabelled() == [], url
        assert audit.unwrapped_tables == 0, url
    assert 'name="viewport"' in browser.get("/admin/staff").text


def test_admin_adds_staff_through_the_form(browser, db, world):
    page = browser.get("/admin/staff")
    r = browser.post("/admin/staff", data={**add_form(), "csrf_token": csrf_of(page.text)},
                     follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/staff"
    user = db.scalars(select(User).where(User.email == "saburo@midori.example")).one()
    assert (user.organisation_id, user.profession, user.role, user.name_kana) == (
        world.clinic.id, "pharmacist", "member", "ヤクザイ サブロウ")
    assert "薬剤 三郎" in browser.get("/admin/staff").text


def test_add_form_without_csrf_token_is_refused(browser, db):
    r = browser.post("/admin/staff", data=add_form(), follow_redirects=False)
    assert r.status_code == 403
    r = browser.post("/admin/staff", data={**add_form(), "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert db.scalars(select(User).where(User.email == "saburo@midori.example")).first() is None


def test_add_form_shows_problems_next_to_fields_and_keeps_what_was_typed(browser, db, world):
    csrf = csrf_of(browser.get("/admin/staff").text)
    r = browser.post("/admin/staff", data={**add_form(password="short", email=world.physician.email),
                                           "csrf_token": csrf})
    assert r.status_code == 422
    assert re.search(r'<p class="field-error" id="s-pw-err">12文字以上', r.text)
    assert re.search(r'<p class="field-error" id="s-email-err">このメールアドレスは既に登録されています', r.text)
    assert 'aria-invalid="true" aria-describedby="s-pw-err s-pw-help"' in r.text
    assert 'value="薬剤 三郎"' in r.text and 'value="ヤクザイ サブロウ"' in r.text
    assert 'value="short"' not in r.text
    assert re.search(r'<option value="pharmacist" selected>', r.text)
    assert db.scalars(select(User).where(User.name == "薬剤 三郎")).first() is None


def test_add_form_reports_a_weak_password_together_with_other_field_problems(browser, db):
    csrf = csrf_of(browser.get("/admin/staff").text)
    r = browser.post("/admin/staff", data={**add_form(name_kana="Saburo", password="saburo-no-pass"),
                                           "csrf_token": csrf})
    assert r.status_code == 422
    assert 'id="s-kana-err"' in r.text
    assert re.search(r'<p class="field-error" id="s-pw-err">メールアドレスや氏名を含めないでください', r.text)


def test_add_form_reports_an_unknown_profession_as_a_field_problem(browser, db):
    csrf = csrf_of(browser.get("/admin/staff").text)
    r = browser.post("/admin/staff", data={**add_form(profession="wizard"), "csrf_token": csrf})
    assert r.status_code == 422
    assert 'id="s-prof-err"' in r.text


def test_role_choices_never_offer_region_admin_to_an_org_admin(browser):
    html = browser.get("/admin/staff").text
    assert 'value="org_admin"' in html and 'value="region_admin"' not in html


def test_edit_page_changes_a_professionals_details(browser, db, world):
    page = browser.get(f"/admin/staff/{world.physician.id}")
    assert page.status_code == 200
    assert f'value="{world.physician.email}"' in page.text
    r = browser.post(f"/admin/staff/{world.physician.id}", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "name": "医師 一朗", "name_kana": "イシ イチロウ",
        "email": "ichiro@clinic.example", "profession": "physician", "role": "org_admin"})
    assert r.status_code == 303
    db.refresh(world.physician)
    assert (world.physician.name, world.physician.name_kana, world.physician.email, world.physician.role) == (
        "医師 一朗", "イシ イチロウ", "ichiro@clinic.example", "org_admin")


def test_edit_page_shows_validation_problems_without_saving(browser, db, world):
    page = browser.get(f"/admin/staff/{world.physician.id}")
    form = {"csrf_token": csrf_of(page.text), "name": "", "name_kana": "Ishi", "email": world.physician.email,
            "profession": "physician", "role": "member"}
    r = browser.post(f"/admin/staff/{world.physician.id}", data=form)
    assert r.status_code == 422
    assert 'id="e-name-err"' in r.text and 'id="e-kana-err"' in r.text and 'id="e-email-err"' not in r.text
    assert 'value="Ishi"' in r.text
    r = browser.post(f"/admin/staff/{world.physician.id}", data={**form, "name": "医師 一朗", "name_kana": "",
                                                                   "email": world.nurse.email})
    assert r.status_code == 422
    assert 'id="e-email-err"' in r.text and 'id="e-name-err"' not in r.text
    db.refresh(world.physician)
    assert world.physician.name == "医師 一郎" and world.physician.email != world.nurse.email


def test_edit_page_reports_an_email_taken_in_a_race_and_still_renders(browser, db, world, monkeypatch):
    # The pre-check misses a concurrent insert; the page must still answer with the field problem.
    monkeypatch.setattr(directory_service, "_email_taken", lambda *args, **kwargs: False)
    page = browser.get(f"/admin/staff/{world.physician.id}")
    r = browser.post(f"/admin/staff/{world.physician.id}", data={
        "csrf_token": csrf_of(page.text), "name": "医師 一朗", "name_kana": "", "email": world.nurse.email,
        "profession": "physician", "role": "member"})
    assert r.status_code == 422
    assert 'id="e-email-err"' in r.text and 'value="医師 一朗"' in r.text
    db.refresh(world.physician)
    assert world.physician.name == "医師 一郎" and world.physician.email != world.nurse.email


def test_own_edit_page_has_no_role_field_and_keeps_my_role(browser, db, world):
    me = world.clinic_admin
    page = browser.get(f"/admin/staff/{me.id}")
    assert 'name="role"' not in page.text
    assert f'/admin/staff/{me.id}/disable' not in page.text
    r = browser.post(f"/admin/staff/{me.id}", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "name": "管理 花子", "name_kana": "", "email": me.email,
        "profession": "physician"})
    assert r.status_code == 303
    db.refresh(me)
    assert (me.name, me.role) == ("管理 花子", "org_admin")


def test_edit_page_of_another_organisations_staff_is_404_without_their_data(browser, world):
    r = browser.get(f"/admin/staff/{world.nurse.id}")
    assert r.status_code == 404
    assert world.nurse.name not in r.text and world.nurse.email not in r.text


def test_disable_asks_for_confirmation_then_signs_the_person_out_and_enable_lets_them_back(
    browser, app, db, world,
):
    with TestClient(app, base_url="http://testserver") as doctor:
        browser_sign_in(doctor, db, world.physician)
        assert doctor.get("/patients", follow_redirects=False).status_code == 200

        confirm = browser.get(f"/admin/staff/{world.physician.id}/disable")
        assert confirm.status_code == 200
        assert "アカウントを無効にしますか" in confirm.text and world.physician.email in confirm.text
        assert 'name="confirm" value="yes"' in confirm.text
        assert f'href="/admin/staff/{world.physician.id}"' in confirm.text, "a way back without disabling"
        db.refresh(world.physician)
        assert world.physician.active is True, "opening the confirmation changes nothing"
        csrf = csrf_of(confirm.text)
        r = browser.post(f"/admin/staff/{world.physician.id}/disable",
                         data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=False)
        assert r.status_code == 303
        db.refresh(world.physician)
        assert world.physician.active is False
        gone = doctor.get("/patients", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"] == "/login"
        assert "無効" in browser.get("/admin/staff").text

        login = doctor.get("/login")
        refused = doctor.post("/login", data={"email": world.physician.email, "password": PASSWORD,
                                              "csrf_token": csrf_of(login.text)}, follow_redirects=False)
        assert refused.status_code == 401
        assert "メールアドレスまたはパスワードが正しくありません" in refused.text

        r = browser.post(f"/admin/staff/{world.physician.id}/enable", data={"csrf_token": csrf},
                         follow_redirects=False)
        assert r.status_code == 303
        browser_sign_in(doctor, db, world.physician)
        assert doctor.get("/patients", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("action", ["disable", "reset-2fa"])
def test_a_one_tap_post_without_confirmation_only_opens_the_confirmation_page(browser, db, world, action):
    csrf = csrf_of(browser.get("/admin/staff").text)
    r = browser.post(f"/admin/staff/{world.physician.id}/{action}", data={"csrf_token": csrf},
                     follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/staff/{world.physician.id}/{action}"
    db.refresh(world.physician)
    assert world.physician.active is True


def test_disable_button_without_csrf_token_changes_nothing(browser, db, world):
    r = browser.post(f"/admin/staff/{world.physician.id}/disable", data={"confirm": "yes"},
                     follow_redirects=False)
    assert r.status_code == 403
    db.refresh(world.physician)
    assert world.physician.active is True


def test_reset_2fa_asks_first_then_shows_an_enrolment_code_that_lets_the_person_enrol_again(
    browser, app, db, keyring, world,
):
    deputy = make_user(db, world.clinic, profession="nurse", role="org_admin", name="副 管理者", keyring=keyring)
    page = browser.get(f"/admin/staff/{deputy.id}")
    assert f'href="/admin/staff/{deputy.id}/reset-2fa"' in page.text
    assert f'action="/admin/staff/{deputy.id}/reset-2fa"' not in page.text, "no one-tap reset"
    confirm = browser.get(f"/admin/staff/{deputy.id}/reset-2fa")
    assert "二要素認証をリセットしますか" in confirm.text
    r = browser.post(f"/admin/staff/{deputy.id}/reset-2fa", data={"csrf_token": csrf_of(confirm.text),
                                                                  "confirm": "yes"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    code = re.search(r'<strong id="enrolment-code">(\d{4}-\d{4})</strong>', r.text).group(1)
    db.refresh(deputy)
    assert deputy.totp_enabled is False and deputy.totp_secret is None
    assert code.replace("-", "") not in (deputy.totp_enrolment_digest or ""), "only a keyed digest is stored"
    assert code not in browser.get(f"/admin/staff/{deputy.id}").text, "shown once"

    with TestClient(app, base_url="http://testserver") as person:
        form = person.get("/login")
        r = person.post("/login", data={"email": deputy.email, "password": PASSWORD, "otp": "",
                                         "csrf_token": csrf_of(form.text)}, follow_redirects=False)
        assert r.headers["location"] == "/account/2fa"
        setup = person.get("/account/2fa")
        started = person.post("/account/2fa/start",
                              data={"csrf_token": csrf_of(setup.text), "enrolment_code": code})
        assert started.status_code == 200 and 'id="totp-secret"' in started.text


def test_adding_an_administrator_shows_their_enrolment_code_once(browser, db, world):
    page = browser.get("/admin/staff")
    r = browser.post("/admin/staff", data={**add_form(role="org_admin"), "csrf_token": csrf_of(page.text)},
                     follow_redirects=False)
    assert r.status_code == 200
    assert "薬剤 三郎さんを追加しました" in r.text
    code = re.search(r'<strong id="enrolment-code">(\d{4}-\d{4})</strong>', r.text).group(1)
    user = db.scalars(select(User).where(User.email == "saburo@midori.example")).one()
    assert user.role == "org_admin" and user.totp_enrolment_digest is not None
    assert code not in browser.get("/admin/staff").text


def test_an_enrolment_code_can_be_issued_again_for_someone_not_yet_enrolled(browser, db, world):
    page = browser.get(f"/admin/staff/{world.physician.id}")
    assert f'action="/admin/staff/{world.physician.id}/enrolment-code"' in page.text
    first = browser.post(f"/admin/staff/{world.physician.id}/enrolment-code",
                         data={"csrf_token": csrf_of(page.text)})
    second = browser.post(f"/admin/staff/{world.physician.id}/enrolment-code",
                          data={"csrf_token": csrf_of(page.text)})
    assert first.status_code == second.status_code == 200
    assert "以前のコードは使えません" in second.text
    db.refresh(world.physician)
    digest = world.physician.totp_enrolment_digest
    assert digest is not None
    enrolled = browser.get(f"/admin/staff/{world.clinic_admin.id}")
    assert "enrolment-code" not in enrolled.text, "not offered for one's own or an enrolled account"


def test_region_admin_account_is_read_only_for_an_org_admin(browser, db, keyring, world):
    region = make_user(db, world.clinic, profession="coordinator", role="region_admin", name="地域 管理",
                       keyring=keyring)
    assert f'/admin/staff/{region.id}/disable' not in browser.get("/admin/staff").text
    page = browser.get(f"/admin/staff/{region.id}")
    assert page.status_code == 200
    assert 'name="role"' not in page.text and "reset-2fa" not in page.text
    assert browser.get(f"/admin/staff/{region.id}/disable").status_code == 403
    r = browser.post(f"/admin/staff/{region.id}/disable",
                     data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
    assert r.status_code == 403
    db.refresh(region)
    assert region.active is True


def test_member_cannot_open_the_staff_pages(client, db, world):
    browser_sign_in(client, db, world.physician)
    assert client.get("/admin/staff").status_code == 403
    assert client.get(f"/admin/staff/{world.nurse.id}").status_code == 403
    assert 'href="/admin/staff"' not in client.get("/patients").text


def test_signed_out_visitor_is_sent_to_login(client):
    r = client.get("/admin/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_staff_page_is_english_with_the_lang_cookie(browser, world):
    browser.cookies.set("lang", "en")
    html = browser.get("/admin/staff").text
    assert "Organisation admin" in html and "Physician" in html and "Initial password" in html
    assert "事業所管理者" not in html


def test_every_text_key_used_by_staff_templates_exists_in_both_languages():
    used: set[str] = set()
    for path in Path(TEMPLATES_DIR).glob("staff*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""", path.read_text("utf-8")))
    # Profession and role labels are looked up by value ("profession_" ~ p), so list them from the enums.
    used |= {f"profession_{p.value}" for p in Profession} | {f"role_{r.value}" for r in Role}
    # Confirmation and enrolment-code pages look their texts up by action and by event.
    used |= {f"staff_confirm_{action}{part}" for action in ("disable", "reset-2fa")
             for part in ("", "_title", "_button")}
    used |= {f"staff_code_{event}" for event in ("added", "reset", "issued")}
    assert {"staff", "add_staff", "staff_edit", "reset_2fa"} <= used
    for lang in ("ja", "en"):
        catalogue = json.loads((LOCALES_DIR / f"{lang}.json").read_text("utf-8"))
        assert sorted(used - set(catalogue)) == [], lang
