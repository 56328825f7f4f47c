"""Access and refresh tokens: every forged, stale or misdirected token is 401; rotation, reuse, revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwe, jwt

from renkei.auth import service as auth_service
from renkei.auth import tokens
from renkei.db.types import utcnow
from tests.auth.support import api_login, bearer
from tests.factories import auth_headers, make_org, make_user


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def signed_in(db, settings, keyring):
    """A user with an API session, and a function that signs arbitrary claims/headers for that session."""
    user = make_user(db, make_org(db))
    auth, _ = auth_service.start_session(db, settings=settings, user=user, kind="api")
    now = int(utcnow().timestamp())

    def claims(**changes: object) -> dict:
        base = {"iss": settings.token_issuer, "aud": settings.token_audience, "sub": str(user.id),
                "sid": str(auth.id), "typ": "access", "iat": now, "nbf": now, "exp": now + 300, "jti": "t1"}
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def sign(key: bytes | str | None = None, algorithm: str = "HS256", **changes: object) -> str:
        return jwt.encode(claims(**changes), keyring.token_key if key is None else key, algorithm=algorithm)

    return user, claims, sign


def _refresh(client, refresh_token: str):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def _status(client, token: str) -> int:
    return client.get("/api/v1/me", headers=bearer(token)).status_code


def test_a_correctly_signed_token_is_accepted(client, signed_in):
    _, _, sign = signed_in
    assert _status(client, sign()) == 200


def test_expired_access_token_is_401(client, db, settings, keyring, signed_in):
    user, _, sign = signed_in
    past = int((utcnow() - timedelta(minutes=20)).timestamp())
    assert _status(client, sign(iat=past, nbf=past, exp=past + 600)) == 401
    auth, _ = auth_service.start_session(db, settings=settings, user=user, kind="api")
    issued_long_ago = tokens.issue_access(
        keyring.token_key, user_id=user.id, session_id=auth.id, issuer=settings.token_issuer,
        audience=settings.token_audience, lifetime=timedelta(minutes=settings.access_token_minutes),
        now=utcnow() - timedelta(minutes=settings.access_token_minutes, seconds=1),
    )
    r = client.get("/api/v1/me", headers=bearer(issued_long_ago))
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


def test_token_not_yet_valid_is_401(client, signed_in):
    _, _, sign = signed_in
    future = int((utcnow() + timedelta(minutes=5)).timestamp())
    assert _status(client, sign(nbf=future, iat=future, exp=future + 300)) == 401


def test_tampered_signature_or_payload_is_401(client, db, signed_in):
    _, claims, sign = signed_in
    good = sign()
    head, payload, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert _status(client, f"{head}.{payload}.{flipped}") == 401
    other = make_user(db, make_org(db))
    assert _status(client, f"{head}.{_b64(claims(sub=str(other.id)))}.{signature}") == 401


def test_token_signed_with_another_key_is_401(client, signed_in):
    _, _, sign = signed_in
    assert _status(client, sign(key=b"k" * 64)) == 401


def test_alg_none_is_401(client, signed_in):
    _, claims, _ = signed_in
    for alg in ("none", "None", "NONE"):
        unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims())}."
        assert _status(client, unsigned) == 401


def test_algorithms_outside_the_allow_list_are_401_even_with_our_key(client, signed_in):
    _, _, sign = signed_in
    for algorithm in ("HS384", "HS512"):
        assert _status(client, sign(algorithm=algorithm)) == 401


def test_rsa_signed_token_and_hs_rs_confusion_are_401(client, keyring, signed_in):
    _, claims, _ = signed_in
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    assert _status(client, jwt.encode(claims(), private_pem.decode(), algorithm="RS256")) == 401
    # The classic confusion: an HS256 token keyed with a public key the attacker knows.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert _status(client, f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}") == 401
    # And the reverse: a header claiming RS256, correctly MACed with our own key.
    signing_input = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims())}"
    mac = hmac.new(keyring.token_key, signing_input.encode(), hashlib.sha256).digest()
    assert _status(client, f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}") == 401


def test_wrong_audience_or_issuer_is_401(client, signed_in):
    _, _, sign = signed_in
    assert _status(client, sign(aud="another-api")) == 401
    assert _status(client, sign(iss="someone-else")) == 401
    assert _status(client, sign(aud=None)) == 401
    assert _status(client, sign(iss=None)) == 401


def test_missing_or_wrong_token_type_is_401(client, signed_in):
    _, _, sign = signed_in
    assert _status(client, sign(typ=None)) == 401
    assert _status(client, sign(typ="refresh")) == 401
    assert _status(client, sign(typ="ws")) == 401


def test_token_for_a_missing_session_or_someone_elses_session_is_401(client, db, settings, signed_in):
    user, _, sign = signed_in
    assert _status(client, sign(sid=str(uuid.uuid4()))) == 401
    other = make_user(db, make_org(db))
    assert _status(client, sign(sub=str(other.id))) == 401
    assert _status(client, sign(sub="not-a-uuid")) == 401
    web, _ = auth_service.start_session(db, settings=settings, user=user, kind="web")
    assert _status(client, sign(sid=str(web.id))) == 401


def test_refresh_token_presented_as_a_bearer_access_token_is_401(client, db):
    user = make_user(db, make_org(db))
    pair = api_login(client, user.email).json()
    assert _status(client, pair["refresh_token"]) == 401
    assert _status(client, pair["access_token"]) == 200


def test_jwe_shaped_tokens_are_401(client, keyring, signed_in):
    _, claims, _ = signed_in
    encrypted = jwe.encrypt(json.dumps(claims()), keyring.token_key[:32], algorithm="dir",
                            encryption="A256GCM").decode()
    assert encrypted.count(".") == 4
    assert _status(client, encrypted) == 401
    assert _status(client, "a.b.c.d.e") == 401


def test_garbage_bearer_values_are_401_not_500(client, signed_in):
    _, claims, sign = signed_in
    header_is_a_list = f"{base64.urlsafe_b64encode(b'[1]').rstrip(b'=').decode()}.{_b64(claims())}.sig"
    for junk in ("", "abc", "a.b.c", "...", header_is_a_list, sign() + "x", "Ω.Ω.Ω"):
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {junk}".encode()})
        assert r.status_code == 401, junk
    assert client.get("/api/v1/me", headers={"Authorization": f"Basic {sign()}"}).status_code == 401


def test_refresh_rotates_the_pair(client, db):
    user = make_user(db, make_org(db))
    first = api_login(client, user.email).json()
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert _status(client, second["access_token"]) == 200
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(client, db):
    user = make_user(db, make_org(db))
    first = api_login(client, user.email).json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert _status(client, second["access_token"]) == 200

    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"] == "not_authenticated"

    newest = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert newest.status_code == 401
    assert _status(client, second["access_token"]) == 401
    assert _status(client, first["access_token"]) == 401


def test_family_revocation_leaves_other_sign_ins_of_the_user_alone(client, db):
    user = make_user(db, make_org(db))
    tablet, desktop = api_login(client, user.email).json(), api_login(client, user.email).json()
    client.post("/api/v1/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
    client.post("/api/v1/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
    assert _status(client, desktop["access_token"]) == 200


def test_unknown_refresh_token_is_401(client):
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens.new_opaque()})
    assert r.status_code == 401


def test_logout_revokes_the_access_and_refresh_tokens(client, db):
    user = make_user(db, make_org(db))
    pair = api_login(client, user.email).json()
    r = client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert _status(client, pair["access_token"]) == 401
    assert _refresh(client, pair["refresh_token"]).status_code == 401


def test_disabling_an_account_rejects_its_token_on_the_next_request(client, db, settings, keyring):
    org = make_org(db)
    admin = make_user(db, org, role="org_admin", keyring=keyring)
    user = make_user(db, org)
    pair = api_login(client, user.email).json()
    assert _status(client, pair["access_token"]) == 200
    r = client.post(f"/api/v1/staff/{user.id}/disable", headers=auth_headers(db, settings, keyring, admin))
    assert r.status_code == 200, r.text
    assert _status(client, pair["access_token"]) == 401
    assert _refresh(client, pair["refresh_token"]).status_code == 401


def test_account_set_inactive_in_the_database_is_rejected_on_the_next_request(client, db, settings, keyring):
    user = make_user(db, make_org(db))
    headers = auth_headers(db, settings, keyring, user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user.active = False
    db.flush()
    assert client.get("/api/v1/me", headers=headers).status_code == 401
