"""API sign-in: no user enumeration, throttling that survives the failed request, strict bodies, /me."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from sqlalchemy import select

from renkei.auth import throttle
from renkei.auth.models import LoginThrottle
from renkei.db.types import utcnow
from tests.auth.support import api_login, bearer
from tests.factories import PASSWORD, auth_headers, make_org, make_user


def _throttle_rows(db) -> list[LoginThrottle]:
    db.expire_all()
    return list(db.scalars(select(LoginThrottle).order_by(LoginThrottle.key)))


def test_sign_in_returns_a_bearer_pair_that_opens_me(client, db):
    user = make_user(db, make_org(db, "みどり在宅クリニック"), name="医師 一郎")
    r = api_login(client, user.email)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and 0 < body["expires_in"] <= 15 * 60
    assert r.headers["cache-control"] == "no-store"

    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "id": str(user.id), "email": user.email, "name": "医師 一郎", "profession": "physician", "role": "member",
        "organisation_id": str(user.organisation_id), "organisation_name": "みどり在宅クリニック",
        "totp_enabled": False, "totp_required": False,
    }
    assert me.headers["cache-control"] == "no-store"


def test_me_without_a_token_is_401(client):
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_email_is_matched_case_insensitively_and_trimmed(client, db):
    user = make_user(db, make_org(db), email="nurse.sato@test.example")
    assert api_login(client, "  Nurse.Sato@Test.Example ").status_code == 200
    assert api_login(client, user.email.upper()).status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_status_and_body(client, db):
    user = make_user(db, make_org(db))
    wrong_password = api_login(client, user.email, "not-the-password-2026")
    unknown_email = api_login(client, "nobody-here@test.example", "not-the-password-2026")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json() == {
        "error": "invalid_credentials", "detail": "The email address or password is incorrect", "fields": [],
    }
    assert wrong_password.headers.get("www-authenticate") == unknown_email.headers.get("www-authenticate")


def test_disabled_account_with_the_right_password_looks_like_a_wrong_password(client, db):
    user = make_user(db, make_org(db))
    user.active = False
    db.flush()
    r = api_login(client, user.email)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_credentials"


def test_unknown_email_and_wrong_password_take_about_the_same_time(client_with, db):
    client = client_with(login_max_failures=1000, login_ip_max_attempts=1000)
    user = make_user(db, make_org(db))
    ghost = "ghost@test.example"
    for email in (user.email, ghost):
        api_login(client, email, "warm-up-password-0")
    known, unknown = [], []
    for i in range(9):
        # Interleaved, so drift in machine load hits both sides alike.
        for email, samples in ((user.email, known), (ghost, unknown)):
            start = time.perf_counter()
            r = api_login(client, email, f"wrong-password-{i:04d}")
            samples.append(time.perf_counter() - start)
            assert r.status_code == 401
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, (ratio, statistics.median(known), statistics.median(unknown))


def test_failure_counters_persist_although_the_failed_request_rolls_back(client, db):
    user = make_user(db, make_org(db))
    assert _throttle_rows(db) == []
    assert api_login(client, user.email, "not-the-password-2026").status_code == 401
    rows = _throttle_rows(db)
    assert [(row.key.split(":")[0], row.failures) for row in rows] == [("acct", 1), ("ip", 1)]
    # Keyed digests only: neither the email address nor the client address is stored.
    assert all(user.email not in row.key and "testclient" not in row.key for row in rows)


def test_account_locks_after_repeated_failures_and_refuses_even_the_right_password(client, db, settings):
    user = make_user(db, make_org(db))
    for _ in range(settings.login_max_failures):
        assert api_login(client, user.email, "not-the-password-2026").status_code == 401
    r = api_login(client, user.email, PASSWORD)
    assert r.status_code == 429
    assert r.json() == {"error": "too_many_attempts", "detail": "Too many attempts; try again later",
                        "fields": []}
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= settings.login_lockout_minutes * 60 + 1
    assert "access_token" not in r.text


def test_unknown_email_locks_exactly_like_a_real_account(client, db, settings):
    user = make_user(db, make_org(db))
    answers = {}
    for email in (user.email, "no-such-person@test.example"):
        statuses = [api_login(client, email, "not-the-password-2026").status_code
                    for _ in range(settings.login_max_failures + 1)]
        locked = api_login(client, email, "not-the-password-2026")
        answers[email] = (statuses, locked.status_code, locked.json(), "retry-after" in locked.headers)
    real, ghost = answers.values()
    assert real == ghost
    assert real[0] == [401] * settings.login_max_failures + [429]


def test_lockout_is_per_account(client, db, settings):
    org = make_org(db)
    victim, colleague = make_user(db, org), make_user(db, org)
    for _ in range(settings.login_max_failures):
        api_login(client, victim.email, "not-the-password-2026")
    assert api_login(client, victim.email).status_code == 429
    assert api_login(client, colleague.email).status_code == 200


def test_successful_sign_in_clears_the_account_failures(client, db, settings):
    user = make_user(db, make_org(db))
    for _ in range(settings.login_max_failures - 1):
        api_login(client, user.email, "not-the-password-2026")
    assert api_login(client, user.email).status_code == 200
    for _ in range(settings.login_max_failures - 1):
        assert api_login(client, user.email, "not-the-password-2026").status_code == 401
    assert api_login(client, user.email).status_code == 200


def test_each_further_run_of_failures_doubles_the_lockout(client, db, settings):
    user = make_user(db, make_org(db))
    for _ in range(settings.login_max_failures):
        api_login(client, user.email, "not-the-password-2026")
    account = next(row for row in _throttle_rows(db) if row.key.startswith("acct:"))
    first = account.locked_until - utcnow()
    assert timedelta(minutes=settings.login_lockout_minutes - 1) < first <= timedelta(
        minutes=settings.login_lockout_minutes)

    account.locked_until = utcnow() - timedelta(seconds=1)  # the first lockout has run out
    db.flush()
    for _ in range(settings.login_max_failures):
        assert api_login(client, user.email, "not-the-password-2026").status_code == 401
    account = next(row for row in _throttle_rows(db) if row.key.startswith("acct:"))
    second = account.locked_until - utcnow()
    assert timedelta(minutes=2 * settings.login_lockout_minutes - 1) < second
    assert api_login(client, user.email).status_code == 429


def test_many_failures_from_one_address_throttle_every_account_from_it(client_with, db):
    user = make_user(db, make_org(db))
    client = client_with(login_ip_max_attempts=3, client=("203.0.113.7", 40000))
    for i in range(3):
        assert api_login(client, f"guess-{i}@test.example", "not-the-password-2026").status_code == 401
    r = api_login(client, user.email)
    assert r.status_code == 429
    assert r.json()["error"] == "too_many_attempts" and int(r.headers["retry-after"]) > 0

    elsewhere = client_with(login_ip_max_attempts=3, client=("198.51.100.20", 40000))
    assert api_login(elsewhere, user.email).status_code == 200


def test_unknown_fields_in_the_login_body_are_listed_by_json_pointer(client, db):
    user = make_user(db, make_org(db))
    body = {"email": user.email, "password": PASSWORD, "remember_me": True}
    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input", "detail": "Some fields are invalid",
        "fields": [{"path": "/remember_me", "message_ja": "不明な項目です",
                    "message_en": "Extra inputs are not permitted"}],
    }


def test_login_validation_errors_never_echo_the_password(client):
    secret = "x" * 1025
    r = client.post("/api/v1/auth/login", json={"email": "a@test.example", "password": secret})
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/password"]
    assert "xxxx" not in r.text


def test_tokens_in_the_url_are_not_accepted(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    token = auth_headers(db, settings, keyring, user)["Authorization"].split()[1]
    assert client.get(f"/api/v1/me?access_token={token}").status_code == 401
    assert client.get(f"/api/v1/me?token={token}").status_code == 401


def test_counters_left_by_made_up_emails_expire_once_they_count_for_nothing(client, db, keyring):
    for i in range(3):
        assert api_login(client, f"nobody-{i}@example.invalid", "wrong-password-2026").status_code == 401
    rows = _throttle_rows(db)
    assert len(rows) == 4, "one counter per made-up email and one for the client address"
    locked_key = throttle.account_key(keyring, "nobody-0@example.invalid")
    for row in rows:
        row.window_start = utcnow() - throttle.ACCOUNT_MEMORY - timedelta(minutes=1)
        if row.key == locked_key:
            row.locked_until = utcnow() + timedelta(hours=1)
    db.flush()

    assert api_login(client, "someone-new@example.invalid", "wrong-password-2026").status_code == 401

    left = {row.key: row for row in _throttle_rows(db)}
    ip_key = throttle.ip_key(keyring, "testclient")
    assert set(left) == {locked_key, ip_key, throttle.account_key(keyring, "someone-new@example.invalid")}
    assert left[ip_key].failures == 1, "the address counter was in use: reset by the failure, not deleted"
    assert left[locked_key].locked_until > utcnow(), "a counter that still locks an account stays"
