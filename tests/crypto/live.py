"""Real deployments for tests that must see committed state: a scratch database, its settings and the CLI.

The shared `client` fixture runs inside a rolled-back transaction, which suits behaviour tests but hides
what actually reaches the disk, what a second process sees, and what the command line does. These
helpers commit for real, into a database nobody else uses, and clean up after themselves.
"""

from __future__ import annotations

import os
import secrets
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from renkei import cli
from renkei.config import Settings
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from tests import factories

BACKEND = os.environ.get("RENKEI_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("RENKEI_TEST_DATABASE_URL", "")
_ENV_VARS = ("RENKEI_ENVIRONMENT", "RENKEI_KEY_FILE", "RENKEI_DATABASE_URL", "RENKEI_VAR_DIR",
             "RENKEI_DEMO_PASSWORD", "RENKEI_ALLOWED_HOSTS", "RENKEI_COOKIE_SECURE", "RENKEI_PUBLIC_URL")


@contextmanager
def scratch_database(tmp_path: Path, *, backend: str = BACKEND) -> Iterator[str]:
    """An empty database: a SQLite file under tmp_path, or a PostgreSQL schema of its own, dropped afterwards.

    A dedicated schema (reached through `search_path`) keeps committed rows away from the suite's
    `public` schema, which other tests share inside rolled-back transactions.
    """
    if backend != "postgres":
        yield f"sqlite:///{tmp_path / 'renkei.db'}"
        return
    schema = "renkei_scratch_" + secrets.token_hex(6)
    admin = make_engine(Settings(database_url=PG_URL).sqlalchemy_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    finally:
        drop_schema(admin, schema)
        admin.dispose()


def drop_schema(admin: Engine, schema: str) -> None:
    """DROP SCHEMA, but never wait forever behind a connection left inside a transaction on its tables.

    Such a connection (a test's or the app's, not yet garbage-collected) holds a lock the DROP waits for
    without PostgreSQL seeing a deadlock: the whole run would stall. After a bounded wait the holders are
    named in a warning (for the run's summary), terminated, and the DROP is retried.
    """
    try:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '15s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        return
    except OperationalError:
        pass
    with admin.begin() as conn:
        holders = conn.execute(text(
            "SELECT DISTINCT a.pid, a.application_name, a.state, left(a.query, 120) FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE n.nspname = :schema AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND a.pid <> pg_backend_pid()"), {"schema": schema}).all()
        for pid, *_ in holders:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    warnings.warn(f"scratch schema held by connections left in a transaction: {[tuple(h) for h in holders]}",
                  stacklevel=2)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def schema_of(url: str) -> str | None:
    """The scratch schema named in a URL made by `scratch_database`, if any."""
    marker = "search_path%3D"
    return url.split(marker, 1)[1] if marker in url else None


def settings_for(tmp_path: Path, url: str, **overrides: object) -> Settings:
    """Settings of a deployment whose key file and var dir live in tmp_path (a development key file is made)."""
    settings = Settings(environment="test", var_dir=tmp_path, key_file=tmp_path / "keys.json", database_url=url,
                        **overrides)
    ensure_dev_keyfile(settings.key_file)  # type: ignore[arg-type]
    return settings


def migrate(settings: Settings) -> Settings:
    migrations.upgrade(settings.sqlalchemy_url)
    return settings


@contextmanager
def committing_session(settings: Settings) -> Iterator[Session]:
    """A session on the deployment's database that commits when the block ends (its own engine)."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


def open_keyring(settings: Settings) -> Keyring:
    """A keyring as a freshly started process would load it from the key file."""
    return Keyring.open(settings.key_file)  # type: ignore[arg-type]


def professional(settings: Settings, *, profession: str = "physician") -> tuple[uuid.UUID, dict[str, str]]:
    """A committed professional in a new organisation and bearer headers for them."""
    keyring = open_keyring(settings)
    with committing_session(settings) as session:
        org = factories.make_org(session, name="カナリア在宅クリニック", kind="home_care_clinic")
        user = factories.make_user(session, org, profession=profession,
                                   email=f"canary-{uuid.uuid4().hex[:12]}@test.example")
        headers = factories.auth_headers(session, settings, keyring, user)
        return user.id, headers


def cli_environment(monkeypatch: pytest.MonkeyPatch, var_dir: Path, url: str, **extra: str) -> None:
    """Point `renkei ...` at this deployment exactly as an operator's environment would."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RENKEI_VAR_DIR", str(var_dir))
    monkeypatch.setenv("RENKEI_DATABASE_URL", url)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `renkei <argv>` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
