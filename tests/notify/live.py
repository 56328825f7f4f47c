"""Real servers for the live-notification tests: uvicorn processes (ws="websockets") on a database of
their own, seeded through the real services, and an asyncio client built on `websockets`.

The shared `client` fixture runs inside a rolled-back transaction that no second process can see; these
servers commit for real. On PostgreSQL they use a database of their own, named after the run's database
(`<run database>_ws`, created when missing), one schema per deployment: they never touch the `public`
schema the rest of the suite drops and recreates, and their listeners are apart from another run's.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from renkei.config import Settings
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.sheets import service as sheet_service
from renkei.timeline import service as timeline_service
from renkei.timeline.schemas import EntryCreate
from tests import factories
from tests.crypto.live import drop_schema

BACKEND = os.environ.get("RENKEI_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("RENKEI_TEST_DATABASE_URL", "")
ORIGIN = "http://127.0.0.1:8000"
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_database(admin: Engine, name: str) -> None:
    """CREATE DATABASE unless it exists; a run creating it at the same moment is not an error."""
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is not None:
            return
        try:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        except (ProgrammingError, IntegrityError):
            # DuplicateDatabase, or the unique violation of a concurrent CREATE: either way it exists now.
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                raise


def _listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux /proc)."""
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # local address, state LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    try:
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


@contextmanager
def database(tmp_path: Path, backend: str = BACKEND) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a fresh schema in the run's `<database>_ws`."""
    if backend != "postgres":
        url = f"sqlite:///{tmp_path / 'live.db'}"
        migrations.upgrade(Settings(database_url=url).sqlalchemy_url)
        yield url
        return
    base = make_url(Settings(database_url=PG_URL).sqlalchemy_url)
    ws_database = f"{base.database}_ws"
    admin = make_engine(base.render_as_string(hide_password=False))
    try:
        _ensure_database(admin, ws_database)
    finally:
        admin.dispose()
    ws_db = base.set(database=ws_database)
    schema = "live_" + secrets.token_hex(6)
    owner = make_engine(ws_db.render_as_string(hide_password=False))
    with owner.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = ws_db.set(drivername="postgresql", query={"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)
    try:
        migrations.upgrade(Settings(database_url=url).sqlalchemy_url)
        yield url
    finally:
        drop_schema(owner, schema)
        owner.dispose()


def settings_for(tmp_path: Path, url: str) -> Settings:
    settings = Settings(environment="test", var_dir=tmp_path, key_file=tmp_path / "keys.json",
                        database_url=url)
    ensure_dev_keyfile(settings.key_file)  # type: ignore[arg-type]
    return settings


@contextmanager
def committing(settings: Settings) -> Iterator[Session]:
    """A session on the deployment's database that commits when the block ends."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


class Server:
    """`uvicorn renkei.asgi:app --ws websockets` in a subprocess, configured through RENKEI_* variables."""

    def __init__(self, settings: Settings, tmp_path: Path, name: str = "a", **env: object) -> None:
        self.settings = settings
        self.port = free_port()
        self.log = tmp_path / f"server-{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
        self.env.update({
            "RENKEI_ENVIRONMENT": "test", "RENKEI_VAR_DIR": str(settings.var_dir),
            "RENKEI_KEY_FILE": str(settings.key_file), "RENKEI_DATABASE_URL": settings.database_url,
            "RENKEI_ALLOWED_ORIGINS": json.dumps([ORIGIN]), "RENKEI_WS_AUTH_TIMEOUT_SECONDS": "1",
        })
        self.env.update({f"RENKEI_{k.upper()}": str(v) for k, v in env.items()})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Server:
        """Start and wait until /healthz answers; a port taken meanwhile by someone else means another port.

        A server that does not come up is killed before the error is raised, never left running.
        """
        for _ in range(3):
            if self._start_once():
                return self
            self.port = free_port()
        raise RuntimeError(f"server could not bind a port: {self.log.read_text()[-3000:]}")

    def _start_once(self) -> bool:
        start_of_log = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "renkei.asgi:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--ws", "websockets", "--log-level", "warning", "--no-access-log"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    output = self.log.read_bytes()[start_of_log:].decode(errors="replace")
                    if "address already in use" in output.lower():
                        return False
                    raise RuntimeError(f"server exited: {output[-3000:]}")
                # Only our own process listening on the port counts: if another took the port between
                # free_port and the bind, /healthz would answer from that one.
                if _listens_on(self.process.pid, self.port):
                    try:
                        if httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200:
                            return True
                    except httpx.HTTPError:
                        pass
                time.sleep(0.1)
            raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """Stop at once, as a crash would (no graceful shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Deployment:
    """A seeded database: the shared test world (physician + nurse on one patient's team, blanket consent)."""

    settings: Settings
    keyring: Keyring
    world: factories.World
    headers: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)

    def as_user(self, user: Any) -> dict[str, str]:
        """Bearer headers for a new API session of `user` (committed, so the server can see it)."""
        with committing(self.settings) as session:
            return factories.auth_headers(session, self.settings, self.keyring, user)


def commit_entries(deployment: Deployment, user: Any, count: int) -> list[str]:
    """Post `count` messages through the timeline service in one committed transaction of this process
    (so the server only learns of them from the outbox, not from an in-process wake-up)."""
    registry = sheet_service.load_registry(deployment.settings.schemas_dir)
    with committing(deployment.settings) as session:
        return [str(timeline_service.create_entry(
            session, keyring=deployment.keyring, registry=registry, settings=deployment.settings,
            actor=factories.actor_of(user), patient_id=deployment.world.patient_id,
            body=EntryCreate(sheet="message", data={"text": f"一括{i}"}),
        ).id) for i in range(count)]


def seed(settings: Settings) -> Deployment:
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    with committing(settings) as session:
        world = factories.build_world(session, keyring)
    return Deployment(settings, keyring, world)


# -- client ----------------------------------------------------------------------------------


async def ticket(http: str, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=http) as client:
        r = await client.post("/api/v1/ws-ticket", headers=headers)
        assert r.status_code == 201, r.text
        return r.json()["ticket"]


async def open_socket(server: Server, headers: dict[str, str], *, resume_after: int | None = None,
                      origin: str | None = ORIGIN) -> ClientConnection:
    """Connect, authenticate with a fresh ticket; the caller reads the replay and `ready`."""
    value = await ticket(server.http, headers)
    ws = await connect(server.ws, origin=origin)  # type: ignore[arg-type]
    await ws.send(json.dumps({"type": "auth", "ticket": value, "resume_after": resume_after}))
    return ws


async def until_ready(ws: ClientConnection, timeout: float = 10.0) -> tuple[list[dict[str, Any]], int]:
    """The replayed events and the cursor of the `ready` message."""
    events = []
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "ready":
                return events, msg["seq"]
            if msg["type"] != "ping":
                events.append(msg)


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    """What `awaitable` gave and how many seconds it took."""
    start = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - start


async def next_event(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] != "ping":
                return msg


async def collect(ws: ClientConnection, count: int, kind: str = "entry.created",
                  timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next `count` events of one kind, whatever else (heartbeats, ready) comes in between."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            msg = json.loads(await ws.recv())
            if msg["type"] == kind:
                got.append(msg)
    return got


async def quiet(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Everything but heartbeats that arrives within `seconds` (expected: nothing)."""
    got = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] != "ping":
                    got.append(msg)
    except TimeoutError:
        pass
    return got


async def close_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def post_entry(server: Server, headers: dict[str, str], patient_id: uuid.UUID, text: str = "訪問時間の変更",
                     **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http) as client:
        r = await client.post(f"/api/v1/patients/{patient_id}/entries", headers=headers,
                              json={"sheet": "message", "data": {"text": text}, "status": "final", **body})
        assert r.status_code == 201, r.text
        return r.json()
