"""The CSRF token of a form post is read from the body only for a live cookie session: an anonymous client
(or a bearer client, which needs no CSRF token) cannot make the server parse a multipart body."""

from __future__ import annotations

from renkei.auth import service as auth_service
from renkei.auth.dependencies import SESSION_COOKIE
from tests.factories import auth_headers

# A multipart body the server cannot parse: the boundary is missing from the content type. Parsing it is a
# 400, so any answer but 400 shows the body was never parsed.
UNPARSEABLE = {"content-type": "multipart/form-data"}
BODY = b'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nt\r\n--x--\r\n'


def test_an_anonymous_form_post_is_refused_before_its_body_is_parsed(client):
    r = client.post("/api/v1/auth/logout", content=BODY, headers=UNPARSEABLE)
    assert r.status_code == 401


def test_an_unknown_session_cookie_is_refused_before_the_body_is_parsed(client):
    client.cookies.set(SESSION_COOKIE, "not-a-session-cookie")
    r = client.post("/api/v1/auth/logout", content=BODY, headers=UNPARSEABLE)
    assert r.status_code == 401


def test_a_bearer_clients_form_body_is_never_parsed_for_a_csrf_token(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.nurse) | UNPARSEABLE
    r = client.post("/api/v1/auth/logout", content=BODY, headers=headers)
    assert r.status_code == 204


def test_a_cookie_session_form_post_is_still_checked_for_its_csrf_token(client, db, settings, world):
    auth, cookie = auth_service.start_session(db, settings=settings, user=world.nurse, kind="web")
    client.cookies.set(SESSION_COOKIE, cookie)
    refused = client.post("/api/v1/auth/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    unparseable = client.post("/api/v1/auth/logout", content=BODY, headers=UNPARSEABLE)
    assert unparseable.status_code == 400, "positive control: a live cookie session's form is parsed"
    accepted = client.post("/api/v1/auth/logout", data={"csrf_token": auth.csrf_token})
    assert accepted.status_code == 204
