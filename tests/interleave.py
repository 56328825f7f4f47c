"""Two requests interleaved at a chosen step, on a committed database (see tests/crypto/live.py).

The first request is held inside its transaction just after a chosen call; the second is sent then, and the
first goes on once the second has its answer or is seen waiting for a lock the first holds (PostgreSQL's
pg_stat_activity), so a test can tell which of the two happened.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from renkei.app import create_app
from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from tests import factories
from tests.crypto import live

HOLD_S = 10  # the longest the held request waits for the other one (reached only when something is wrong)
ANSWERED, WAITED, TIMED_OUT = "answered", "waited", "timed out"


# For a module of such tests: the interleavings need two transactions at once, which SQLite never runs.
ONLY_ON_POSTGRES = pytest.mark.skipif(live.BACKEND != "postgres",
                                      reason="SQLite runs one transaction at a time: nothing interleaves")

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@pytest.fixture
def committed_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a deployment on a migrated database of the test's own (live.scratch_database). A module
    of interleaving tests takes it as its `settings`: `settings = interleave.committed_settings`."""
    with live.scratch_database(tmp_path) as url:
        yield live.migrate(live.settings_for(tmp_path, url))


def together(settings: Settings, *requests: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> list[Any]:
    """Run the coroutines, each given a client of one application instance, at the same time."""
    async def all_of_them() -> list[Any]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return list(await asyncio.gather(*(request(client) for request in requests)))
    return asyncio.run(all_of_them())


@dataclass
class Hold:
    """The hold of the first request: `held` once it began; `outcome` how it ended: the second request had
    its answer (ANSWERED), or was seen waiting for a lock in the database (WAITED), or neither (TIMED_OUT)."""

    held: threading.Event = field(default_factory=threading.Event)
    go_on: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None


def waiting_for_a_lock(settings: Settings, *, timeout: float = HOLD_S, done: threading.Event | None = None
                       ) -> bool:
    """Whether another connection to the database is seen waiting for a lock within `timeout` (polled);
    False at once when `done` is set first."""
    engine = make_engine(settings.sqlalchemy_url)
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                if done is not None and done.is_set():
                    return False
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
                conn.rollback()
                if waiting:
                    return True
                time.sleep(0.02)
        return False
    finally:
        engine.dispose()


def hold_first_call(monkeypatch, settings: Settings, owner, name: str, *, locking: bool = False) -> Hold:
    """Hold the request that first calls `owner.name` (with `for_update=True` when `locking`) just after the
    call, until the second request has its answer or is seen waiting for a lock. Other calls run straight
    through."""
    hold, original = Hold(), getattr(owner, name)

    def holding(*args, **kwargs):
        result = original(*args, **kwargs)
        if not hold.held.is_set() and (kwargs.get("for_update") or not locking):
            hold.held.set()
            if waiting_for_a_lock(settings, done=hold.go_on):
                hold.outcome = WAITED
            else:
                hold.outcome = ANSWERED if hold.go_on.is_set() else TIMED_OUT
        return result

    monkeypatch.setattr(owner, name, holding)
    return hold


def run(settings: Settings, first: Send, second: Send, hold: Hold) -> tuple[httpx.Response, httpx.Response]:
    """Send `first`; once it is held, send `second` (the first goes on when the second has its answer or
    waits for the first)."""
    async def then_second(client: httpx.AsyncClient) -> httpx.Response:
        assert await asyncio.to_thread(hold.held.wait, 10), "the first request was never held"
        try:
            return await second(client)
        finally:
            hold.go_on.set()
    one, two = together(settings, first, then_second)
    return one, two


@dataclass
class Team:
    patient_id: uuid.UUID
    consent_id: uuid.UUID
    nurse_id: uuid.UUID
    physician: dict[str, str]
    colleague: dict[str, str]
    nurse: dict[str, str]


def team(settings: Settings) -> Team:
    """A patient with two physicians of one clinic and a visiting nurse, each on their own tablet."""
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        clinic = factories.make_org(session, name="同時操作クリニック", kind="home_care_clinic")
        station = factories.make_org(session, name="同時操作訪問看護", kind="visiting_nurse_station")
        physician, colleague = (factories.make_user(session, clinic, profession="physician")
                                for _ in range(2))
        nurse = factories.make_user(session, station, profession="nurse")
        patient_id = factories.make_patient(session, keyring, physician)
        for user, role in ((colleague, "physician"), (nurse, "visiting_nurse")):
            patient_service.add_member(session, actor=factories.actor_of(physician), patient_id=patient_id,
                                       data=patient_service.MembershipIn(user_id=user.id, team_role=role,
                                                                         start_date=today_jst()))
        consent_id = factories.grant_consent(session, keyring, patient_id, physician)
        headers = [factories.auth_headers(session, settings, keyring, user)
                   for user in (physician, colleague, nurse)]
        return Team(patient_id, consent_id, nurse.id, *headers)
