"""Test fixtures: a migrated database per run, a rolled-back transaction per test, real app and services.

Backend: SQLite always; PostgreSQL when RENKEI_TEST_BACKEND=postgres and RENKEI_TEST_DATABASE_URL is set
(`make test` runs the suite once per backend).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from renkei.app import create_app
from renkei.config import Settings
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from tests import factories

# Property tests judge correctness, not speed: a loaded 2-core CI machine must not turn them into flakes.
hypothesis_settings.register_profile("renkei", deadline=None)
hypothesis_settings.load_profile("renkei")

BACKEND = os.environ.get("RENKEI_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("RENKEI_TEST_DATABASE_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    return f"renkei database backend: {BACKEND}"


def pytest_configure(config: pytest.Config) -> None:
    if BACKEND == "postgres" and not PG_URL:
        raise pytest.UsageError("RENKEI_TEST_BACKEND=postgres needs RENKEI_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("renkei")


@pytest.fixture(scope="session")
def database_url(run_dir: Path) -> str:
    if BACKEND == "postgres":
        return PG_URL
    return f"sqlite:///{run_dir / 'test.db'}"


def reset_postgres(url: str) -> None:
    """Drop everything in the public schema so migrations start from nothing."""
    engine = make_engine(Settings(database_url=url).sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def settings(run_dir: Path, database_url: str) -> Settings:
    s = Settings(environment="test", var_dir=run_dir, key_file=run_dir / "keys.json", database_url=database_url)
    ensure_dev_keyfile(s.key_file)  # type: ignore[arg-type]
    return s


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    if BACKEND == "postgres":
        reset_postgres(settings.database_url)
    migrations.upgrade(settings.sqlalchemy_url)
    eng = make_engine(settings.sqlalchemy_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One outer transaction per test, rolled back at the end: tests never see each other's rows."""
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture
def keyring(settings: Settings) -> Keyring:
    return Keyring.open(settings.key_file)  # type: ignore[arg-type]


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session for arranging data and asserting on it, inside the test's transaction."""
    session = make_sessionmaker(connection, join_transaction_mode="create_savepoint")()
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, connection: Connection):
    return create_app(settings, bind=connection)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def world(db: Session, keyring: Keyring) -> factories.World:
    """Two organisations with staff and a patient whose team has a physician and a nurse."""
    return factories.build_world(db, keyring)
