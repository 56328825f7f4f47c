"""The event hub stops when its app shuts down, whatever its dispatcher was doing at that moment."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from sqlalchemy import Engine

from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.notify import hub as hub_module
from renkei.notify.hub import Hub
from tests.notify import live

SRC = Path(__file__).resolve().parents[2] / "src" / "renkei"


async def _started_hub(settings: Settings, engine: Engine) -> Hub:
    hub = Hub(settings, engine=engine, write_sessionmaker=make_sessionmaker(engine))
    await hub.start()
    async with asyncio.timeout(30):
        while not hub.ready:
            await asyncio.sleep(0.01)
    # Let the dispatcher drain what positioning and the listener's first wake-up asked for, and wait again.
    await asyncio.sleep(0.2)
    return hub


def test_a_wake_up_arriving_with_the_shutdown_does_not_keep_the_dispatcher_running(tmp_path):
    """A notification that lands in the same loop turn as `stop` once kept the app from ever shutting down
    (`asyncio.wait_for` on Python 3.11 returns the wake-up and drops the cancellation)."""
    with live.database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url).model_copy(update={"notify_poll_seconds": 30})

        async def scenario(engine: Engine) -> list[bool]:
            hub = await _started_hub(settings, engine)
            tasks = list(hub._tasks)
            hub.wake()
            async with asyncio.timeout(10):
                await hub.stop()
            return [t.done() for t in tasks]

        engine = make_engine(settings.sqlalchemy_url)
        try:
            done = asyncio.run(scenario(engine))
        finally:
            engine.dispose()
    assert done and all(done)


def test_a_hub_stopped_while_waiting_ends_all_its_tasks(tmp_path):
    with live.database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url).model_copy(update={"notify_poll_seconds": 30})

        async def scenario(engine: Engine) -> tuple[bool, list[bool]]:
            hub = await _started_hub(settings, engine)
            tasks = list(hub._tasks)
            async with asyncio.timeout(10):
                await hub.stop()
            return hub.running, [t.done() for t in tasks]

        engine = make_engine(settings.sqlalchemy_url)
        try:
            running, done = asyncio.run(scenario(engine))
        finally:
            engine.dispose()
    assert running is False and done and all(done)


def _run_with_extra_task(tmp_path, extra) -> tuple[bool, float, asyncio.Task]:
    """Start a hub, add `extra()` as one of its tasks, stop the hub; (stopped, seconds stop took, task)."""
    with live.database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url)

        async def scenario(engine: Engine) -> tuple[bool, float, asyncio.Task]:
            hub = await _started_hub(settings, engine)
            task = asyncio.create_task(extra(), name="stubborn")
            hub._tasks.append(task)
            await asyncio.sleep(0)
            loop = asyncio.get_running_loop()
            began = loop.time()
            async with asyncio.timeout(10):
                await hub.stop()
            return not hub.running, loop.time() - began, task

        engine = make_engine(settings.sqlalchemy_url)
        try:
            return asyncio.run(scenario(engine))
        finally:
            engine.dispose()


def test_a_task_that_swallows_one_cancellation_is_cancelled_again_and_stops(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(hub_module, "STOP_TIMEOUT_S", 5.0)

    async def swallows_once() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(30)

    stopped, took, task = _run_with_extra_task(tmp_path, swallows_once)
    assert stopped and task.cancelled()
    assert took < 2.0
    assert "did not stop when cancelled" not in caplog.text


def test_a_task_that_ignores_every_cancellation_is_named_and_does_not_hold_up_the_shutdown(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(hub_module, "STOP_TIMEOUT_S", 0.5)

    async def ignores_cancellation_for_a_while() -> None:
        # Long enough to outlast the hub's limit, short enough that asyncio.run's own clean-up ends.
        deadline = asyncio.get_running_loop().time() + 2.0
        while asyncio.get_running_loop().time() < deadline:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass

    stopped, took, _ = _run_with_extra_task(tmp_path, ignores_cancellation_for_a_while)
    assert stopped
    assert 0.4 < took < 1.5
    assert "event hub task stubborn did not stop when cancelled" in caplog.text


def test_no_server_code_waits_with_asyncio_wait_for():
    """`asyncio.wait_for` loses a cancellation racing its result on Python 3.11; `asyncio.timeout` won't."""
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "wait_for":
                offenders.append(f"{path.relative_to(SRC).as_posix()}:{node.lineno}")
    assert offenders == []
