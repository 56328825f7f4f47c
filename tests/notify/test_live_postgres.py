"""Fan-out across processes on PostgreSQL: LISTEN/NOTIFY between two uvicorn processes, and a listener that
loses its connection listens again and catches up from the outbox. Only with RENKEI_TEST_BACKEND=postgres.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.notify.listener import APPLICATION_NAME
from tests.notify import live
from tests.notify.live import Deployment, Server

pytestmark = [
    pytest.mark.slow, pytest.mark.postgres,
    pytest.mark.skipif(live.BACKEND != "postgres", reason="cross-process fan-out needs PostgreSQL"),
]


@pytest.fixture(scope="module")
def pair(live_settings: Settings) -> Iterator[tuple[Server, Server]]:
    """Two app processes on one database; the outbox poll is 60 s (the longest allowed), so only NOTIFY, or
    the catch-up after listening again, delivers within seconds."""
    tmp = Path(live_settings.var_dir)
    a = live.Server(live_settings, tmp, name="a", notify_poll_seconds=60).start()
    try:
        b = live.Server(live_settings, tmp, name="b", notify_poll_seconds=60).start()
    except Exception:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


def _listeners(settings: Settings, *, terminate: bool = False) -> int:
    """How many event listeners are connected to the deployment's database (optionally cutting them off)."""
    engine = make_engine(settings.sqlalchemy_url)
    database = make_url(settings.sqlalchemy_url).database
    query = "pg_terminate_backend(pid)" if terminate else "pid"
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {query} FROM pg_stat_activity WHERE application_name = :name "
                                     "AND datname = :db"), {"name": APPLICATION_NAME, "db": database}).all()
            return len(rows)
    finally:
        engine.dispose()


def test_an_entry_posted_through_one_process_reaches_a_socket_on_the_other(pair, deployment: Deployment):
    a, b = pair
    world = deployment.world

    async def scenario():
        ws = await live.open_socket(a, deployment.as_user(world.physician))
        await live.until_ready(ws)
        start = time.monotonic()
        entry = await live.post_entry(b, deployment.as_user(world.nurse), world.patient_id)
        event = await live.next_event(ws, timeout=20)
        elapsed = time.monotonic() - start
        await ws.close()
        return entry, event, elapsed

    entry, event, elapsed = asyncio.run(scenario())
    assert event["type"] == "entry.created" and event["entry_id"] == entry["id"]
    # The wait above is long so that a slow machine fails here, with the time it took; NOTIFY takes well
    # under a second, and a 60 s poll delivers within 5 s of a post only one time in twelve.
    assert elapsed < 5


def test_a_listener_that_loses_its_connection_listens_again_and_catches_up(pair, deployment: Deployment,
                                                                           live_settings: Settings):
    a, b = pair
    world = deployment.world
    assert _listeners(live_settings) >= 2

    async def scenario():
        ws = await live.open_socket(a, deployment.as_user(world.physician))
        await live.until_ready(ws)
        assert _listeners(live_settings, terminate=True) >= 2
        # Posted while the listeners are cut off: only catching up from the outbox can deliver it.
        start = time.monotonic()
        entry = await live.post_entry(b, deployment.as_user(world.nurse), world.patient_id)
        event = await live.next_event(ws, timeout=20)
        caught_up = time.monotonic() - start
        start = time.monotonic()
        later = await live.post_entry(b, deployment.as_user(world.nurse), world.patient_id)
        again = await live.next_event(ws, timeout=20)
        notified = time.monotonic() - start
        await ws.close()
        return entry, event, later, again, caught_up, notified

    entry, event, later, again, caught_up, notified = asyncio.run(scenario())
    assert event["entry_id"] == entry["id"] and again["entry_id"] == later["id"]
    assert caught_up < 5 and notified < 5  # the listener came back (in 0.2 s), not the 60 s poll
    assert _listeners(live_settings) >= 2
