"""`renkei keys rotate|status` on a committed database, with servers that started before the rotation."""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei.app import create_app
from renkei.config import Settings
from renkei.crypto import aead, keyfile
from renkei.crypto import keyring as keyring_module
from renkei.crypto.keyring import Keyring
from renkei.directory.models import User
from renkei.patients import keys as patient_keys
from renkei.patients import service as patient_service
from renkei.patients.models import Patient, PatientKey
from renkei.patients.schemas import PatientIdentity
from tests.crypto import live
from tests.factories import auth_headers, patient_data

PHARMACIST = "ph.yamada@midori.example"  # on all 20 demo patients' teams
# Registered 17 of the 20 demo patients, so may read them through the API whatever their consent says.
REGISTRAR = "cm.yamaguchi@midori.example"
FIRST_DEMO_CARE_INSURANCE_NUMBER = "1000000000"


@dataclass
class Deployment:
    settings: Settings
    url: str

    @property
    def key_file(self) -> Path:
        return self.settings.key_file  # type: ignore[return-value]


@pytest.fixture
def deployment(tmp_path, monkeypatch, capsys) -> Iterator[Deployment]:
    """The demo region, migrated and loaded by the CLI into a database of its own."""
    with live.scratch_database(tmp_path) as url:
        live.cli_environment(monkeypatch, tmp_path, url)
        assert live.run_cli(capsys, "migrate")[0] == 0
        assert live.run_cli(capsys, "demo")[0] == 0
        yield Deployment(live.settings_for(tmp_path, url), url)


def _headers_of(settings: Settings, email: str) -> dict[str, str]:
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return auth_headers(session, settings, keyring, user)


def _names_read_with(settings: Settings, keyring: Keyring) -> dict[uuid.UUID, str]:
    with live.committing_session(settings) as session:
        return {p.id: patient_service.decrypt_identity(session, keyring, p).name
                for p in session.scalars(select(Patient))}


def _names_read_by_a_fresh_process(settings: Settings) -> dict[uuid.UUID, str]:
    return _names_read_with(settings, live.open_keyring(settings))


def _registered_by(settings: Settings, email: str) -> dict[str, str]:
    """Names of the patients a professional registered (readable by them through the API)."""
    names = _names_read_by_a_fresh_process(settings)
    with live.committing_session(settings) as session:
        user_id = session.scalars(select(User.id).where(User.email == email)).one()
        mine = session.scalars(select(Patient.id).where(Patient.created_by == user_id))
        return {str(pid): names[pid] for pid in mine}


def _wrapped_keys(settings: Settings) -> dict[str, tuple[str, bytes]]:
    with live.committing_session(settings) as session:
        return {k.key_id: (k.kek_id, k.wrapped) for k in session.scalars(select(PatientKey))}


def _kek_usage(settings: Settings) -> dict[str, int]:
    with live.committing_session(settings) as session:
        return patient_keys.kek_usage(session)


def _names_via_api(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    r = client.get("/api/v1/patients", headers=headers)
    assert r.status_code == 200, r.text
    return {p["id"]: p["identity"]["name"] for p in r.json()}


def test_rotate_replaces_the_kek_rewraps_every_data_key_and_keeps_the_old_one_retired(deployment, capsys):
    settings = deployment.settings
    before = keyfile.load(deployment.key_file)
    old_kek = before.current_kek
    wrapped_before = _wrapped_keys(settings)
    names_before = _names_read_by_a_fresh_process(settings)
    assert len(names_before) == 20 and {kek for kek, _ in wrapped_before.values()} == {old_kek}

    code, out, err = live.run_cli(capsys, "keys", "rotate")

    assert code == 0, err
    match = re.fullmatch(r"new KEK (kek-[0-9a-f-]+); rewrapped 20 data keys; 1 retired KEK\(s\) kept for "
                         r"unwrapping until `renkei keys prune`\n", out)
    assert match, out
    after = keyfile.load(deployment.key_file)
    new_kek = match.group(1)
    assert after.current_kek == new_kek != old_kek
    assert list(after.keks) == [old_kek, new_kek] and list(after.retired) == [old_kek]
    assert after.keks[old_kek] == before.keks[old_kek]
    assert after.keks[new_kek] != before.keks[old_kek]
    # Only the KEK changes: blind indexes, tokens, audit chain and secrets keep their keys.
    for name in ("index_key", "audit_key", "token_key", "secret_key", "checkpoint_key"):
        assert getattr(after, name) == getattr(before, name), name
    wrapped_after = _wrapped_keys(settings)
    assert wrapped_after.keys() == wrapped_before.keys()
    assert all(wrapped_after[k] == (new_kek, wrapped_after[k][1]) != wrapped_before[k] for k in wrapped_after)
    assert _kek_usage(settings) == {new_kek: 20}
    assert _names_read_by_a_fresh_process(settings) == names_before
    assert (deployment.key_file.stat().st_mode & 0o777) == 0o600

    code, out, err = live.run_cli(capsys, "keys", "prune", "--grace-hours", "0")
    assert (code, out) == (0, "rewrapped 0 data keys; removed 1 retired KEK(s)\n"), err
    pruned = keyfile.load(deployment.key_file)
    assert list(pruned.keks) == [new_kek] and pruned.retired == {}
    assert _names_read_by_a_fresh_process(settings) == names_before


def _register_with_a_data_key_wrapped_now(
    settings: Settings, wrapped_by: Keyring, name: str,
) -> Callable[[], uuid.UUID]:
    """What a server does in one request, split in two: it wraps a new patient's data key (under the KEK it
    holds now), and its transaction commits only when this returns."""
    patient_id, key_id = uuid.uuid4(), "dk-" + secrets.token_hex(8)
    data_key = wrapped_by.new_data_key()
    kek_id, wrapped = wrapped_by.wrap(data_key, owner=str(patient_id), key_id=key_id)

    def commit_late() -> uuid.UUID:
        identity = PatientIdentity.model_validate(
            {k: v for k, v in patient_data(name=name).items() if k != "team_role"})
        with live.committing_session(settings) as session:
            registrar = session.scalars(select(User).where(User.email == REGISTRAR)).one()
            session.add(Patient(id=patient_id, identity_ct=aead.seal(
                data_key, key_id, aad=patient_service.IDENTITY_AAD, binding=f"patient:{patient_id}",
                payload=identity.model_dump_json().encode()), created_by=registrar.id))
            session.flush()
            session.add(PatientKey(key_id=key_id, patient_id=patient_id, kek_id=kek_id, wrapped=wrapped))
        return patient_id

    return commit_late


def test_a_data_key_wrapped_with_the_old_kek_and_committed_after_rotation_survives_a_restart(
    deployment, capsys,
):
    settings = deployment.settings
    server = live.open_keyring(settings)
    old_kek = server.current_kek_id
    commit_late = _register_with_a_data_key_wrapped_now(settings, server, "遅延 登録")

    code, out, err = live.run_cli(capsys, "keys", "rotate")
    assert code == 0 and "rewrapped 20 data keys" in out, err
    late = commit_late()

    assert _kek_usage(settings)[old_kek] == 1, "the late row is under the retired KEK"
    assert "遅延 登録" in _names_read_by_a_fresh_process(settings).values(), "readable after a restart"
    code, out, _ = live.run_cli(capsys, "keys", "status")
    assert code == 0 and "ERROR" not in out and f"  {old_kek}: wraps 1 data keys (retired " in out

    code, out, _ = live.run_cli(capsys, "keys", "prune")
    assert (code, out) == (0, "rewrapped 1 data keys; removed 0 retired KEK(s); kept 1 (in use, or retired "
                              "less than 24 h ago)\n")
    assert old_kek in keyfile.load(deployment.key_file).keks, "inside the grace period the retired KEK stays"
    code, out, _ = live.run_cli(capsys, "keys", "prune", "--grace-hours", "0")
    assert (code, out) == (0, "rewrapped 0 data keys; removed 1 retired KEK(s)\n")
    new_kek = keyfile.load(deployment.key_file).current_kek
    assert _kek_usage(settings) == {new_kek: 21}
    assert _names_read_by_a_fresh_process(settings)[late] == "遅延 登録"


def test_servers_started_before_rotation_keep_reading_every_record(deployment, capsys):
    settings = deployment.settings
    headers = _headers_of(settings, REGISTRAR)
    every_name = _names_read_by_a_fresh_process(settings)
    names = _registered_by(settings, REGISTRAR)
    assert len(names) == 17
    warm, cold, idle = create_app(settings), create_app(settings), create_app(settings)
    old_kek = cold.state.keyring.current_kek_id
    with TestClient(warm) as warm_client, TestClient(cold) as cold_client:
        assert _names_via_api(warm_client, headers) == names  # data keys now cached under the old KEK

        assert live.run_cli(capsys, "keys", "rotate")[0] == 0
        new_kek = keyfile.load(deployment.key_file).current_kek

        assert cold.state.keyring.current_kek_id == old_kek, "the cold server has not looked at the file yet"
        assert _names_via_api(cold_client, headers) == names
        assert cold.state.keyring.current_kek_id == new_kek, "meeting an unknown KEK id reloads the key file"
        assert _names_via_api(warm_client, headers) == names
        assert _names_read_with(settings, idle.state.keyring) == every_name
        assert _names_read_with(settings, warm.state.keyring) == every_name
        for pid, name in names.items():
            r = cold_client.get(f"/api/v1/patients/{pid}", headers=headers)
            assert r.status_code == 200 and r.json()["identity"]["name"] == name
        found = cold_client.post("/api/v1/patients/lookup", headers=headers,
                                 json={"insurance_number": FIRST_DEMO_CARE_INSURANCE_NUMBER})
        assert found.status_code == 200 and len(found.json()) == 1, "blind indexes survive rotation"


def test_patient_registered_by_a_server_that_started_before_rotation_survives_a_restart(deployment, capsys):
    settings = deployment.settings
    headers = _headers_of(settings, PHARMACIST)
    app = create_app(settings)
    with TestClient(app) as client:
        assert live.run_cli(capsys, "keys", "rotate")[0] == 0
        r = client.post("/api/v1/patients", headers=headers,
                        json=patient_data(name="回転後 登録", name_kana="カイテンゴ トウロク", team_role="pharmacist"))
        assert r.status_code == 201, r.text
    new_kek = keyfile.load(deployment.key_file).current_kek
    assert _kek_usage(settings) == {new_kek: 21}, "new data keys must be wrapped by the KEK in the key file"
    assert "回転後 登録" in _names_read_by_a_fresh_process(settings).values()
    code, out, _ = live.run_cli(capsys, "keys", "status")
    assert code == 0 and "ERROR" not in out


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@dataclass
class Read:
    started: float
    ended: float
    ok: bool
    detail: str


def test_rotation_under_concurrent_reads_has_zero_read_errors(deployment, capsys, monkeypatch):
    settings = deployment.settings
    # Without the data-key cache every read unwraps with whichever KEK its row names at that instant.
    monkeypatch.setattr(keyring_module, "CACHE_SIZE", 0)
    headers = _headers_of(settings, REGISTRAR)
    names = _registered_by(settings, REGISTRAR)
    app = create_app(settings)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    reads: list[Read] = []
    readers: list[threading.Thread] = []
    stop = threading.Event()

    def reader(index: int) -> None:
        ids = list(names)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            n = index
            while not stop.is_set():
                n += 1
                started = time.perf_counter()
                try:
                    if n % 2:
                        r = http.get("/api/v1/patients")
                        ok = r.status_code == 200 and {p["id"]: p["identity"]["name"] for p in r.json()} == names
                    else:
                        pid = ids[n % len(ids)]
                        r = http.get(f"/api/v1/patients/{pid}")
                        ok = r.status_code == 200 and r.json()["identity"]["name"] == names[pid]
                    detail = f"{r.status_code} {r.text[:200]}"
                except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported below
                    ok, detail = False, repr(exc)
                reads.append(Read(started, time.perf_counter(), ok, detail))

    try:
        _wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started, "uvicorn did not start"
        readers.extend(threading.Thread(target=reader, args=(i,)) for i in range(4))
        for t in readers:
            t.start()
        _wait_for(lambda: len(reads) >= 8, "reads before the rotation")
        windows = []
        for _ in range(2):
            began = time.perf_counter()
            code, out, err = live.run_cli(capsys, "keys", "rotate")
            windows.append((began, time.perf_counter()))
            assert code == 0, err
            assert "rewrapped 20 data keys" in out
        settled = len(reads)
        _wait_for(lambda: len(reads) >= settled + 8, "reads after the rotation")
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=60)
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    failures = [r.detail for r in reads if not r.ok]
    assert failures == [], failures[:5]
    during = [r for r in reads for began, ended in windows if r.started < ended and r.ended > began]
    assert during, "some reads must have been in flight while a rotation ran"
    key_file = keyfile.load(deployment.key_file)
    assert len(key_file.keks) == 3 and set(key_file.retired) == set(key_file.keks) - {key_file.current_kek}
    assert app.state.keyring.current_kek_id == key_file.current_kek


def test_keys_status_lists_each_kek_and_the_data_keys_it_wraps(deployment, capsys):
    kek = keyfile.load(deployment.key_file).current_kek
    code, out, _ = live.run_cli(capsys, "keys", "status")
    assert code == 0
    assert out.splitlines() == [f"key file: {deployment.key_file}", f"current KEK: {kek}",
                                f"  {kek}: wraps 20 data keys"]
    assert "keys.json" in out and "=" not in out, "status never prints key material"


def test_keys_status_fails_when_data_keys_name_a_kek_missing_from_the_key_file(deployment, capsys):
    material = keyfile.load(deployment.key_file)
    lost = material.current_kek
    replacement = keyfile.new_kek_id()
    material.keks = {replacement: bytes(32)}
    material.current_kek = replacement
    keyfile.save(deployment.key_file, material)
    code, out, _ = live.run_cli(capsys, "keys", "status")
    assert code == 1
    assert f"ERROR: data keys wrapped by KEKs missing from the key file: ['{lost}']" in out
    assert f"  {replacement}: wraps 0 data keys" in out
