"""Canary scan: identifying data written through the API never reaches the database files in clear.

Canary patients with unique names, kana, addresses and insurance numbers are registered, looked up and
read through a real app on a committed database; then the raw SQLite file and its WAL (or a pg_dump of
the PostgreSQL schema) are searched for every canary. A staff e-mail address, which is stored in clear
by design, is the positive control that proves the scan looks at the right bytes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from renkei.app import create_app
from renkei.directory.models import User
from tests.crypto import live
from tests.crypto.canaries import Canary, leaks, make_canary


def _register_and_use(client: TestClient, headers: dict[str, str], canary: Canary) -> None:
    r = client.post("/api/v1/patients", json=canary.registration(), headers=headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    by_kana = client.post("/api/v1/patients/lookup", headers=headers,
                          json={"name_kana": canary.name_hiragana, "birth_date": canary.birth_date})
    by_number = client.post("/api/v1/patients/lookup", headers=headers,
                            json={"insurance_number": canary.care_insurance_number})
    assert [m["id"] for m in by_kana.json()] == [pid], by_kana.text
    assert [m["id"] for m in by_number.json()] == [pid], by_number.text
    got = client.get(f"/api/v1/patients/{pid}", headers=headers)
    assert got.json()["identity"]["name"] == canary.name


def _sqlite_bytes(db_file: Path) -> bytes:
    wal = db_file.with_name(db_file.name + "-wal")
    return db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _staff_email(settings, user_id) -> bytes:
    with live.committing_session(settings) as session:
        return session.get(User, user_id).email.encode()


def test_canary_patients_never_appear_in_the_sqlite_file_or_its_wal(tmp_path):
    db_file = tmp_path / "canary.db"
    settings = live.migrate(live.settings_for(tmp_path, f"sqlite:///{db_file}"))
    user_id, headers = live.professional(settings)
    canaries = [make_canary(seed) for seed in (1, 2, 3)]
    app = create_app(settings)
    with TestClient(app) as client:
        for canary in canaries:
            _register_and_use(client, headers, canary)
        wal = db_file.with_name(db_file.name + "-wal")
        assert wal.exists() and wal.stat().st_size > 0, "the committed rows should still be in the WAL"
        live_bytes = _sqlite_bytes(db_file)
    email = _staff_email(settings, user_id)
    # After the last connection closes SQLite checkpoints the WAL into the main file.
    at_rest = _sqlite_bytes(db_file)
    assert email in live_bytes and email in at_rest, "positive control: clear-text staff data must be visible"
    assert leaks(live_bytes, canaries) == []
    assert leaks(at_rest, canaries) == []


@pytest.mark.postgres
@pytest.mark.skipif(live.BACKEND != "postgres", reason="PostgreSQL run only (RENKEI_TEST_BACKEND=postgres)")
def test_canary_patients_never_appear_in_a_pg_dump(tmp_path):
    canaries = [make_canary(seed) for seed in (4, 5)]
    with live.scratch_database(tmp_path) as url:
        settings = live.migrate(live.settings_for(tmp_path, url))
        user_id, headers = live.professional(settings)
        with TestClient(create_app(settings)) as client:
            for canary in canaries:
                _register_and_use(client, headers, canary)
        email = _staff_email(settings, user_id)
        dump = subprocess.run(
            ["pg_dump", "--dbname", live.PG_URL, "--schema", live.schema_of(url), "--no-owner", "--encoding=UTF8"],
            capture_output=True, check=True, timeout=120,
        ).stdout
    assert email in dump, "positive control: clear-text staff data must be in the dump"
    assert b"COPY" in dump and b"patient_index" in dump
    assert leaks(dump, canaries, hex_too=True) == []
