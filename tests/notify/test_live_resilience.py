"""Nothing is lost: slow consumers are dropped and resume from their cursor, a restarted server lets clients
resume, events committed by another process arrive through the outbox, and appends commit in seq order.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.notify import service as notify
from renkei.notify.models import Audience
from tests.notify import live
from tests.notify.live import Deployment, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_server(live_settings: Settings) -> Iterator[Server]:
    """A server with an 8-message send buffer, a fast outbox poll and fast heartbeats."""
    srv = live.Server(live_settings, Path(live_settings.var_dir), name="small", ws_send_queue=8,
                      notify_poll_seconds=0.2, ws_heartbeat_seconds=0.5).start()
    yield srv
    srv.stop()


def test_a_slow_consumer_is_dropped_and_resumes_from_its_cursor(small_server: Server, deployment: Deployment):
    world = deployment.world
    headers = deployment.as_user(world.physician)

    async def scenario():
        ws = await live.open_socket(small_server, headers)
        _, cursor = await live.until_ready(ws)
        # Forty events committed at once arrive in one batch: more than the socket may have queued.
        posted = live.commit_entries(deployment, world.nurse, 40)
        received = []
        code = None
        try:
            async with asyncio.timeout(10):
                while True:
                    msg = await live.next_event(ws)
                    received.append(msg)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        resume = received[-1]["seq"] if received else cursor
        again = await live.open_socket(small_server, headers, resume_after=resume)
        rest = await live.collect(again, len(posted) - len(received))
        await again.close()
        return code, posted, received + rest

    code, posted, received = asyncio.run(scenario())
    assert code == 4429
    assert [e["entry_id"] for e in received] == posted


def test_heartbeats_carry_the_cursor_to_resume_from(small_server: Server, deployment: Deployment):
    world = deployment.world
    headers = deployment.as_user(world.physician)

    async def scenario():
        ws = await live.open_socket(small_server, headers)
        _, cursor = await live.until_ready(ws)
        entry = await live.post_entry(small_server, deployment.as_user(world.nurse), world.patient_id)
        event = await live.next_event(ws)
        async with asyncio.timeout(5):
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] == "ping":
                    break
        await ws.close()
        return cursor, entry, event, msg

    cursor, entry, event, ping = asyncio.run(scenario())
    assert event["entry_id"] == entry["id"] and ping["seq"] >= event["seq"] > cursor


def test_a_restarted_server_lets_its_clients_resume_without_loss(
    live_settings: Settings, deployment: Deployment, tmp_path: Path,
):
    world = deployment.world
    headers = deployment.as_user(world.physician)
    first = live.Server(live_settings, tmp_path, name="before").start()
    try:
        async def before_crash():
            ws = await live.open_socket(first, headers)
            _, cursor = await live.until_ready(ws)
            seen = await live.post_entry(first, deployment.as_user(world.nurse), world.patient_id)
            event = await live.next_event(ws)
            assert event["entry_id"] == seen["id"]
            first.kill()
            assert await live.close_code(ws) is None  # a crash: no close frame
            return event["seq"]

        cursor = asyncio.run(before_crash())
    finally:
        first.kill()
    missed = live.commit_entries(deployment, world.nurse, 2)
    second = live.Server(live_settings, tmp_path, name="after").start()
    try:
        async def after_restart():
            ws = await live.open_socket(second, headers, resume_after=cursor)
            replayed, _ = await live.until_ready(ws)
            later = await live.post_entry(second, deployment.as_user(world.nurse), world.patient_id)
            live_event = await live.next_event(ws)
            await ws.close()
            return replayed, later, live_event

        replayed, later, live_event = asyncio.run(after_restart())
    finally:
        second.stop()
    assert [e["entry_id"] for e in replayed] == missed
    assert live_event["entry_id"] == later["id"]


def test_outbox_appends_commit_in_the_order_of_their_numbers(live_settings: Settings):
    """A second writer waits for the first to commit, so no reader can see seq n+1 before seq n."""
    engine = make_engine(live_settings.sqlalchemy_url)
    maker = make_sessionmaker(engine)
    second_done = threading.Event()
    result: dict[str, int] = {}

    def second_writer() -> None:
        with maker() as session:
            result["second"] = notify.append(session, kind="entry.created", audience=Audience.team)
            session.commit()
        second_done.set()

    try:
        with maker() as first:
            result["first"] = notify.append(first, kind="entry.created", audience=Audience.team)
            thread = threading.Thread(target=second_writer)
            thread.start()
            assert not second_done.wait(0.5), "the second append did not wait for the first transaction"
            first.commit()
        thread.join(10)
        assert second_done.is_set()
        assert result["second"] > result["first"]
    finally:
        engine.dispose()
