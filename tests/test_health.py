"""Liveness and readiness: ready only when the database answers and every migration head is applied."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import text

from renkei.app import create_app
from renkei.db import migrations
from renkei.db.engine import make_engine
from tests.crypto import live


def _readyz(settings):
    with TestClient(create_app(settings)) as client:
        return client.get("/readyz")


def test_liveness_answers_without_authentication(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readiness_is_200_on_the_migrated_test_database(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_renkei_migrate_on_an_empty_database_makes_the_app_ready(tmp_path, monkeypatch, capsys):
    with live.scratch_database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url)
        assert _readyz(settings).status_code == 503
        live.cli_environment(monkeypatch, tmp_path, url)
        code, out, _ = live.run_cli(capsys, "migrate")
        assert (code, out) == (0, "database migrated to head\n")
        r = _readyz(settings)
        assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_database_without_migrations_is_not_ready(tmp_path):
    with live.scratch_database(tmp_path) as url:
        r = _readyz(live.settings_for(tmp_path, url))
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "migrations_pending"}
    assert r.headers["cache-control"] == "no-store"


def test_database_behind_the_newest_migration_is_not_ready(tmp_path):
    with live.scratch_database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url)
        migrations.upgrade(settings.sqlalchemy_url, revision="0001")
        r = _readyz(settings)
    assert r.status_code == 503 and r.json()["database"] == "migrations_pending"


def test_unreachable_database_is_not_ready_and_says_nothing_more(tmp_path):
    settings = live.settings_for(tmp_path, f"sqlite:///{tmp_path}/no/such/dir/renkei.db")
    r = _readyz(settings)
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "unreachable"}
    assert "sqlite" not in r.text.lower() and str(tmp_path) not in r.text


def test_readiness_does_not_queue_behind_a_writer_holding_the_sqlite_write_lock(tmp_path):
    settings = live.migrate(live.settings_for(tmp_path, f"sqlite:///{tmp_path}/busy.db"))
    writer = make_engine(settings.sqlalchemy_url)
    try:
        with writer.connect() as conn, conn.begin():
            conn.execute(text("SELECT 1"))  # the engine's BEGIN IMMEDIATE now holds the write lock
            started = time.monotonic()
            r = _readyz(settings)
            waited = time.monotonic() - started
    finally:
        writer.dispose()
    assert r.status_code == 200
    assert waited < 10, "the probe must not wait for the 30 s busy timeout"
