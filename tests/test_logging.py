"""Logging canary: a full sign-in / register / look up / read / refresh / sign-out session logs no PHI,
password or token, even with every logger (SQL statements and rows included) at DEBUG."""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import threading
import time
import urllib.parse

import pytest
import uvicorn

from renkei import cli
from renkei.auth import passwords
from tests.crypto.canaries import leaks, make_canary
from tests.factories import make_org, make_user

CANARY_PASSWORD = "カナリアの合言葉は秘密です-" + secrets.token_hex(6)


@pytest.fixture
def captured(caplog):
    """Capture at DEBUG; request it before `client` so the test's database connection is opened with SQL
    logging already on (SQLAlchemy decides per connection)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="renkei.access")
    # SQLAlchemy keeps its own loggers at WARNING; open them too so statements and rows are checked.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    # uvicorn's loggers as well: its access log would print every path and query string.
    for name in UVICORN_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def canary_user(db):
    org = make_org(db, "ログ検査クリニック", "home_care_clinic")
    user = make_user(db, org, profession="physician", email=f"log-{secrets.token_hex(5)}@test.example")
    user.password_hash = passwords.hash_password(CANARY_PASSWORD)
    db.flush()
    return user


UVICORN_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")
# The test's own HTTP client logs the URLs it requests; that is the caller's log, not the server's.
_CLIENT_SIDE = ("httpx", "httpcore")


def _server_records(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if not r.name.startswith(_CLIENT_SIDE)]


def _everything_logged(records: list[logging.LogRecord]) -> bytes:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    parts = []
    for record in _server_records(records):
        parts.append(formatter.format(record))
        parts.append(repr(record.args))
        parts.append(repr({k: v for k, v in vars(record).items() if k not in ("args", "msg", "exc_info")}))
    return "\n".join(parts).encode("utf-8")


def test_a_whole_clinical_session_logs_no_phi_password_or_token(captured, client, canary_user):
    canary = make_canary(99)
    login = client.post("/api/v1/auth/login", json={"email": canary_user.email, "password": CANARY_PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    wrong = client.post("/api/v1/auth/login", json={"email": canary_user.email, "password": CANARY_PASSWORD + "x"})
    assert wrong.status_code == 401

    created = client.post("/api/v1/patients", json=canary.registration(), headers=bearer)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    for body in ({"name_kana": canary.name_kana, "birth_date": canary.birth_date},
                 {"insurance_number": canary.health_insurance_number}):
        found = client.post("/api/v1/patients/lookup", json=body, headers=bearer)
        assert [m["id"] for m in found.json()] == [pid]
    fetched = client.get(f"/api/v1/patients/{pid}", headers=bearer)
    assert fetched.status_code == 200 and fetched.json()["identity"]["name"] == canary.name
    assert client.get("/api/v1/patients", headers=bearer).status_code == 200
    invalid = client.post("/api/v1/patients", json=canary.registration(birth_date="not-a-date"), headers=bearer)
    assert invalid.status_code == 422
    unmatched = client.get(f"/api/v1/no-such-route/{canary.name}", params={"q": canary.care_insurance_number},
                           headers=bearer)
    assert unmatched.status_code == 404
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new_bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=new_bearer).status_code == 204

    logged = _everything_logged(captured.records)
    names = {r.name for r in captured.records}
    assert "renkei.access" in names and any(n.startswith("sqlalchemy.engine") for n in names), names
    assert b"INSERT INTO patient" in logged, "positive control: SQL statements are being captured"
    secrets_seen = {
        "password": CANARY_PASSWORD, "wrong password": CANARY_PASSWORD + "x",
        "access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
        "rotated access token": refreshed.json()["access_token"],
        "rotated refresh token": refreshed.json()["refresh_token"],
    }
    # Tokens are also checked by their signature part alone, in case a log line cut the header off.
    for label in ("access token", "rotated access token"):
        secrets_seen[label + " signature"] = secrets_seen[label].rsplit(".", 1)[-1]
    assert leaks(logged, [canary], extra=secrets_seen) == []


def _access_lines(records: list[logging.LogRecord]) -> list[dict]:
    return [json.loads(r.getMessage()) for r in records if r.name == "renkei.access"]


def test_access_log_line_has_request_id_route_template_status_and_user(captured, client, canary_user):
    login = client.post("/api/v1/auth/login", json={"email": canary_user.email, "password": CANARY_PASSWORD})
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    pid = client.post("/api/v1/patients", json=make_canary(7).registration(), headers=bearer).json()["id"]
    captured.clear()

    r = client.get(f"/api/v1/patients/{pid}", headers=bearer)
    missing = client.get("/api/v1/patients/00000000-0000-0000-0000-000000000000", headers=bearer)

    lines = _access_lines(captured.records)
    assert len(lines) == 2
    hit, miss = lines
    assert set(hit) == {"request_id", "method", "route", "status", "ms", "user_id"}
    assert hit["request_id"] == r.headers["x-request-id"]
    assert (hit["method"], hit["route"], hit["status"]) == ("GET", "/api/v1/patients/{patient_id}", 200)
    assert hit["user_id"] == str(canary_user.id)
    assert isinstance(hit["ms"], float) and hit["ms"] >= 0
    assert pid not in json.dumps(hit), "the route template is logged, never the concrete path"
    assert (miss["route"], miss["status"]) == ("/api/v1/patients/{patient_id}", 404)
    assert miss["request_id"] == missing.headers["x-request-id"] != hit["request_id"]


def test_unauthenticated_and_unmatched_requests_are_logged_without_their_paths(captured, client):
    client.get("/api/v1/patients", headers={"Authorization": "Bearer not-a-token-canary-7d1f"})
    client.get("/api/v1/カナリア/0000123456?token=abc")
    first, second = _access_lines(captured.records)
    assert (first["route"], first["status"]) == ("/api/v1/patients", 401)
    assert "user_id" not in first
    assert (second["route"], second["status"]) == ("<unmatched>", 404)
    logged = _everything_logged(captured.records)
    assert "カナリア".encode() not in logged and b"0000123456" not in logged and b"token=abc" not in logged
    assert b"canary-7d1f" not in logged


# -- uvicorn, as `renkei serve` runs it ---------------------------------------------------------------


def _serve_options(monkeypatch, tmp_path) -> dict:
    """The keyword arguments `renkei serve` gives uvicorn.run (captured; no server is started)."""
    calls: list[tuple[object, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    monkeypatch.setenv("RENKEI_VAR_DIR", str(tmp_path))
    assert cli.main(["serve"]) == 0
    [(app, options)] = calls
    assert app == "renkei.asgi:app"
    return options


def test_renkei_serve_runs_uvicorn_without_its_access_log(monkeypatch, tmp_path):
    assert _serve_options(monkeypatch, tmp_path)["access_log"] is False


def test_renkei_serve_offers_no_websocket_compression_and_bounds_frames(monkeypatch, tmp_path):
    options = _serve_options(monkeypatch, tmp_path)
    # Memory per idle socket (DESIGN.md budget 64 KiB) is met only without permessage-deflate.
    assert options["ws_per_message_deflate"] is False
    assert options["ws_max_size"] == 64 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_uvicorn_configured_like_renkei_serve_logs_no_path_or_query_string(
    captured, app, monkeypatch, tmp_path,
):
    options = _serve_options(monkeypatch, tmp_path)
    canary = make_canary(31)
    port = _free_port()
    # uvicorn.Config replaces its loggers' handlers (and stops them propagating): remember and restore them.
    saved = {name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
             for name, lg in ((n, logging.getLogger(n)) for n in UVICORN_LOGGERS)}
    config = uvicorn.Config(app, **(options | {"host": "127.0.0.1", "port": port, "workers": None}))
    # uvicorn logs access lines only if "uvicorn.access" has a handler when a connection opens, so adding one
    # here would switch the access log on: record what the server asks that logger to write instead.
    access_lines: list[str] = []
    access_logger = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access_logger, "info", lambda msg, *args, **kw: access_lines.append(msg % args))
    logging.getLogger("uvicorn").addHandler(captured.handler)
    for name in UVICORN_LOGGERS:
        captured.set_level(logging.DEBUG, logger=name)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        query = urllib.parse.urlencode({"name": canary.name,
                                        "insurance_number": canary.care_insurance_number})
        path = f"/api/v1/patients/lookup-{canary.health_insurance_number}?{query}"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path, headers={"Host": "testserver"})
        status = connection.getresponse().status
        connection.close()
        assert status in (401, 404, 405)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        for name, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
    assert access_lines == []
    uvicorn_records = [r for r in captured.records if r.name.startswith("uvicorn")]
    assert any(r.name == "uvicorn.error" for r in uvicorn_records), "positive control: uvicorn is captured"
    logged = _everything_logged(uvicorn_records)
    assert b"lookup-" not in logged and b"insurance_number" not in logged
    for value in canary.secrets.values():
        for form in (value, urllib.parse.quote(value), urllib.parse.quote_plus(value)):
            assert form.encode() not in logged, f"uvicorn logged {form!r}"
