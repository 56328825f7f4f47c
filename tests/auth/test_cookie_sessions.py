"""Browser sign-in: the /login form, cookie attributes, CSRF on form posts, Origin, idle timeout, logout."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.auth import enrolment
from renkei.auth.models import AuthSession
from renkei.auth.tokens import digest
from renkei.db.types import utcnow
from renkei.directory.models import User
from tests.auth.support import away_from_step_boundary, csrf_field, page_login
from tests.factories import PASSWORD, TOTP_SECRET, enrol_totp, make_org, make_user

SESSION_COOKIE = "renkei_session"


def _web_session(db, cookie: str) -> AuthSession:
    db.expire_all()
    return db.scalars(select(AuthSession).where(AuthSession.token_hash == digest(cookie))).one()


def _fresh_client(app, cookie: str) -> TestClient:
    """A second browser that holds only the given session cookie."""
    return TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: cookie})


def test_sign_in_page_works_end_to_end(client, world):
    form = client.get("/login")
    assert form.status_code == 200
    assert 'name="csrf_token"' in form.text and "サインイン" in form.text
    login_csrf = form.cookies.get("renkei_login_csrf")
    assert login_csrf and login_csrf == csrf_field(form.text)

    r = page_login(client, world.physician.email)
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    set_cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/" in set_cookie
    assert "Max-Age=" in set_cookie

    page = client.get("/patients")
    assert page.status_code == 200
    assert "担当患者" in page.text and "山田 花子" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_sign_in_without_the_login_csrf_token_is_refused(client, world):
    client.get("/login")
    forged = {"email": world.physician.email, "password": PASSWORD, "csrf_token": "forged"}
    r = client.post("/login", data=forged, follow_redirects=False)
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.cookies
    fresh = TestClient(client.app, base_url="http://testserver")
    r = fresh.post("/login", data={"email": world.physician.email, "password": PASSWORD, "csrf_token": ""},
                   follow_redirects=False)
    assert r.status_code == 403


def test_sign_in_from_a_cross_site_origin_is_refused(client, world):
    form = client.get("/login")
    r = client.post("/login", headers={"Origin": "https://evil.example"}, follow_redirects=False,
                    data={"email": world.physician.email, "password": PASSWORD,
                          "csrf_token": csrf_field(form.text)})
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.cookies


def test_sign_in_from_our_own_origin_is_accepted(client, world, settings):
    form = client.get("/login")
    r = client.post("/login", headers={"Origin": settings.public_url}, follow_redirects=False,
                    data={"email": world.physician.email, "password": PASSWORD,
                          "csrf_token": csrf_field(form.text)})
    assert r.status_code == 303


def test_bad_credentials_re_render_the_form_with_a_japanese_message(client, world):
    r = page_login(client, world.physician.email, "not-the-password-2026")
    assert r.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません" in r.text
    assert 'role="alert"' in r.text
    assert f'value="{world.physician.email}"' in r.text
    assert "not-the-password-2026" not in r.text
    assert SESSION_COOKIE not in r.cookies
    # The re-rendered form carries a fresh token that works for the next try.
    retry = client.post("/login", follow_redirects=False,
                        data={"email": world.physician.email, "password": PASSWORD,
                              "csrf_token": csrf_field(r.text)})
    assert retry.status_code == 303


def test_unknown_email_on_the_form_shows_the_same_message(client):
    r = page_login(client, "nobody@test.example", "not-the-password-2026")
    assert r.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません" in r.text


def test_locked_account_on_the_form_shows_the_too_many_attempts_message(client, world, settings):
    for _ in range(settings.login_max_failures):
        page_login(client, world.physician.email, "not-the-password-2026")
    r = page_login(client, world.physician.email)
    assert r.status_code == 429
    assert "試行回数が多すぎます" in r.text


def test_form_sign_in_asks_for_the_code_when_two_factor_is_on(client, db, keyring, world):
    enrol_totp(db, keyring, world.physician)
    r = page_login(client, world.physician.email)
    assert r.status_code == 401 and "確認コードを入力してください" in r.text
    away_from_step_boundary()
    r = page_login(client, world.physician.email, otp=pyotp.TOTP(TOTP_SECRET).now())
    assert r.status_code == 303 and r.headers["location"] == "/patients"


def test_form_post_with_the_cookie_but_without_csrf_token_is_403(client, world):
    page_login(client, world.physician.email)
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": "not-the-token"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/logout", data={"csrf_token": "ｃｓｒｆ-非ASCII"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/patients").status_code == 200


def test_api_write_with_the_cookie_needs_the_csrf_header(client, world):
    page_login(client, world.physician.email)
    token = csrf_field(client.get("/patients").text)
    r = client.post("/api/v1/auth/totp/enrol")
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert client.post("/api/v1/auth/totp/enrol", headers={"X-CSRF-Token": token}).status_code == 200


def test_csrf_token_of_another_session_does_not_work(client, app, world):
    page_login(client, world.nurse.email)
    nurse_token = csrf_field(client.get("/patients").text)
    doctor = TestClient(app, base_url="http://testserver")
    page_login(doctor, world.physician.email)
    r = doctor.post("/logout", data={"csrf_token": nurse_token}, follow_redirects=False)
    assert r.status_code == 403


def test_cross_site_origin_is_refused_even_with_the_csrf_token(client, world):
    page_login(client, world.physician.email)
    token = csrf_field(client.get("/patients").text)
    r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/patients").status_code == 200
    r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": "null"}, follow_redirects=False)
    assert r.status_code == 403


def test_logout_ends_the_cookie_session(client, app, db, world):
    page_login(client, world.physician.email)
    cookie = client.cookies[SESSION_COOKIE]
    token = csrf_field(client.get("/patients").text)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert _web_session(db, cookie).revoked_reason == "logout"
    replayed = _fresh_client(app, cookie)
    assert replayed.get("/patients", follow_redirects=False).status_code == 303
    assert replayed.get("/api/v1/me").status_code == 401


def test_idle_session_is_ended_and_stays_ended(client, app, db, settings, world):
    page_login(client, world.physician.email)
    cookie = client.cookies[SESSION_COOKIE]
    session = _web_session(db, cookie)
    session.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes, seconds=5)
    db.flush()

    r = client.get("/patients", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    ended = _web_session(db, cookie)
    assert ended.revoked_at is not None and ended.revoked_reason == "idle"

    ended.last_seen_at = utcnow()  # even a fresh timestamp cannot bring it back
    db.flush()
    assert _fresh_client(app, cookie).get("/api/v1/me").status_code == 401


def test_activity_keeps_the_session_alive(client, db, settings, world):
    page_login(client, world.physician.email)
    cookie = client.cookies[SESSION_COOKIE]
    session = _web_session(db, cookie)
    session.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes - 1)
    db.flush()
    assert client.get("/patients").status_code == 200
    assert utcnow() - _web_session(db, cookie).last_seen_at < timedelta(minutes=1)


def test_signing_in_on_a_shared_tablet_ends_the_previous_persons_session(client, app, db, world):
    page_login(client, world.physician.email)
    doctor_cookie = client.cookies[SESSION_COOKIE]
    page_login(client, world.nurse.email)
    assert client.cookies[SESSION_COOKIE] != doctor_cookie
    assert _web_session(db, doctor_cookie).revoked_reason == "replaced"
    assert _fresh_client(app, doctor_cookie).get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").json()["id"] == str(world.nurse.id)


def test_disabling_an_account_ends_its_cookie_session(client, app, db, world):
    page_login(client, world.physician.email)
    user = db.get(User, world.physician.id)
    user.active = False
    db.flush()
    assert client.get("/patients", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def _secret_on(page: str) -> str:
    line = next(line for line in page.splitlines() if 'id="totp-secret"' in line)
    return line.split('value="')[1].split('"')[0]


def test_admin_without_two_factor_is_sent_to_the_setup_page_and_can_finish_it(client, db, keyring):
    admin = make_user(db, make_org(db), role="org_admin")
    code = enrolment.issue_enrolment_code(db, keyring=keyring, user=admin).code
    r = page_login(client, admin.email)
    assert r.status_code == 303 and r.headers["location"] == "/account/2fa"

    blocked = client.get("/patients")
    assert blocked.status_code == 403

    setup = client.get("/account/2fa")
    assert setup.status_code == 200
    assert "二要素認証の設定" in setup.text and 'name="enrolment_code"' in setup.text
    assert 'id="totp-secret"' not in setup.text and "otpauth://" not in setup.text
    db.expire_all()
    assert db.get(User, admin.id).totp_secret is None, "a GET writes nothing"
    token = csrf_field(setup.text)

    refused = client.post("/account/2fa/start", data={"csrf_token": token, "enrolment_code": "0000-0000"})
    assert refused.status_code == 422 and 'id="enrolment-code-err"' in refused.text
    assert "otpauth://" not in refused.text
    started = client.post("/account/2fa/start", data={"csrf_token": token, "enrolment_code": code})
    assert started.status_code == 200
    secret = _secret_on(started.text)
    assert f"otpauth://totp/Renkei:{admin.email.replace('@', '%40')}?secret={secret}" in started.text
    assert 'src="data:image/svg+xml;base64,' in started.text, "the URI as a QR code to scan"
    assert started.headers["cache-control"] == "no-store"
    assert secret not in client.get("/account/2fa").text, "the secret is shown once, not on a reload"

    wrong = client.post("/account/2fa", data={"csrf_token": token, "code": "12345x"}, follow_redirects=False)
    assert wrong.status_code == 422
    assert "確認コードが正しくありません" in wrong.text and secret not in wrong.text
    assert 'href="/account/2fa"' in wrong.text, "a way to start over"
    no_csrf = client.post("/account/2fa", data={"code": pyotp.TOTP(secret).now()}, follow_redirects=False)
    assert no_csrf.status_code == 403

    away_from_step_boundary()
    done = client.post("/account/2fa", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/patients"
    assert client.get("/patients").status_code == 200
    assert "二要素認証は有効です" in client.get("/account/2fa").text
    db.expire_all()
    assert db.get(User, admin.id).totp_enabled is True


def test_a_member_starts_two_factor_with_the_password_alone_and_each_start_makes_a_new_secret(client, db):
    user = make_user(db, make_org(db))
    page_login(client, user.email)
    setup = client.get("/account/2fa")
    assert 'name="enrolment_code"' not in setup.text
    token = csrf_field(setup.text)
    first = _secret_on(client.post("/account/2fa/start", data={"csrf_token": token}).text)
    second = _secret_on(client.post("/account/2fa/start", data={"csrf_token": token}).text)
    assert first != second


def test_setup_page_is_in_english_when_chosen(client, db):
    user = make_user(db, make_org(db))
    page_login(client, user.email)
    client.cookies.set("lang", "en")
    page = client.get("/account/2fa")
    assert page.status_code == 200
    assert "Set up two-factor authentication" in page.text
    started = client.post("/account/2fa/start", data={"csrf_token": csrf_field(page.text)})
    assert "Secret key" in started.text and "Scan this QR code" in started.text


def test_setup_page_needs_a_session(client):
    r = client.get("/account/2fa", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_switching_language_returns_to_the_same_page(client, db):
    user = make_user(db, make_org(db))
    page_login(client, user.email)
    page = client.get("/patients")
    assert '<input type="hidden" name="next" value="/patients">' in page.text
    r = client.post("/lang", data={"lang": "en", "next": "/patients"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    assert 'lang="en"' in client.get("/patients").text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "patients", "/patients?next=x", "/a\r\nSet-Cookie: x=1",
                                    "/..//evil.example", "/patients//evil.example"])
def test_switching_language_never_redirects_off_this_site(client, target):
    r = client.post("/lang", data={"lang": "ja", "next": target}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
