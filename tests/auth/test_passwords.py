"""Passwords: argon2id, the policy for new passwords, exact Unicode verification, rehash on login."""

from __future__ import annotations

import unicodedata

from passlib.context import CryptContext

from renkei.auth import passwords
from renkei.directory.models import User
from tests.auth.support import api_login
from tests.factories import PASSWORD, auth_headers, make_org, make_user

# 33 kana/kanji (3 bytes each in UTF-8) and one ASCII digit: exactly 100 bytes.
JAPANESE_PASSPHRASE = "在宅医療と介護の連携はみんなでつくる安心なくらしの大事なしくみです1"


def _change_password(client, headers, new: str):
    return client.post("/api/v1/auth/password", headers=headers,
                       json={"current_password": PASSWORD, "new_password": new})


def test_stored_hashes_are_argon2id_with_the_configured_parameters(db):
    user = make_user(db, make_org(db))
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(PASSWORD, user.password_hash) == (True, None)
    assert passwords.verify(PASSWORD + "x", user.password_hash) == (False, None)


def test_new_password_shorter_than_twelve_characters_is_refused(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    r = _change_password(client, auth_headers(db, settings, keyring, user), "Kz7-qp-Wm4")
    assert r.status_code == 422
    assert r.json()["fields"] == [{"path": "/new_password", "message_ja": "12文字以上にしてください",
                                   "message_en": "Must be at least 12 characters"}]


def test_common_password_is_refused_even_when_long_enough(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    for common in ("password1234", "PASSWORD1234", "qwertyuiop123"):
        r = _change_password(client, headers, common)
        assert r.status_code == 422, common
        assert [f["path"] for f in r.json()["fields"]] == ["/new_password"]
        assert r.json()["fields"][0]["message_en"] == "This password is too common"
        assert common not in r.text


def test_japanese_passphrase_of_100_bytes_signs_in_and_a_one_character_change_fails(
    client, db, settings, keyring
):
    assert len(JAPANESE_PASSPHRASE.encode("utf-8")) == 100
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    assert _change_password(client, headers, JAPANESE_PASSPHRASE).status_code == 204

    assert api_login(client, user.email, JAPANESE_PASSPHRASE).status_code == 200
    one_kana_changed = JAPANESE_PASSPHRASE.replace("みんな", "みんに")
    voiced_mark_dropped = JAPANESE_PASSPHRASE.replace("です", "てす")
    for wrong in (one_kana_changed, voiced_mark_dropped, JAPANESE_PASSPHRASE[:-1], JAPANESE_PASSPHRASE + " "):
        r = api_login(client, user.email, wrong)
        assert r.status_code == 401, wrong
        assert r.json()["error"] == "invalid_credentials"


def test_decomposed_kana_typed_on_another_keyboard_matches_the_composed_passphrase(
    client, db, settings, keyring
):
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    assert _change_password(client, headers, JAPANESE_PASSPHRASE).status_code == 204
    decomposed = unicodedata.normalize("NFD", JAPANESE_PASSPHRASE)
    assert decomposed != JAPANESE_PASSPHRASE
    assert api_login(client, user.email, decomposed).status_code == 200


def test_login_upgrades_a_hash_made_with_weaker_parameters(client, db):
    weak = CryptContext(schemes=["argon2"], argon2__type="ID", argon2__memory_cost=8 * 1024,
                        argon2__time_cost=1, argon2__parallelism=1)
    user = make_user(db, make_org(db))
    user.password_hash = weak.hash(PASSWORD)
    db.flush()
    assert user.password_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")

    assert api_login(client, user.email).status_code == 200

    db.expire_all()
    upgraded = db.get(User, user.id).password_hash
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(PASSWORD, upgraded) == (True, None)
    assert api_login(client, user.email).status_code == 200


def test_failed_login_does_not_rehash_the_stored_password(client, db):
    weak = CryptContext(schemes=["argon2"], argon2__type="ID", argon2__memory_cost=8 * 1024,
                        argon2__time_cost=1, argon2__parallelism=1)
    user = make_user(db, make_org(db))
    user.password_hash = weak_hash = weak.hash(PASSWORD)
    db.flush()
    assert api_login(client, user.email, PASSWORD + "!").status_code == 401
    db.expire_all()
    assert db.get(User, user.id).password_hash == weak_hash


def test_password_change_ends_other_sessions_but_keeps_the_current_one(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    current, other = auth_headers(db, settings, keyring, user), auth_headers(db, settings, keyring, user)
    assert _change_password(client, current, JAPANESE_PASSPHRASE).status_code == 204
    assert client.get("/api/v1/me", headers=current).status_code == 200
    assert client.get("/api/v1/me", headers=other).status_code == 401
    assert api_login(client, user.email, PASSWORD).status_code == 401


def test_password_change_needs_the_current_password(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    r = client.post("/api/v1/auth/password", headers=headers,
                    json={"current_password": "not-the-password-at-all", "new_password": JAPANESE_PASSPHRASE})
    assert r.status_code == 401
    assert api_login(client, user.email, PASSWORD).status_code == 200
