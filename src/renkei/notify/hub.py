"""The event hub of one app process: its websocket connections and the dispatcher that fans events out.

The hub is woken in-process after a commit that appended events, by PostgreSQL NOTIFY when another
process appended them, and by a slow poll as a safety net. It always reads the outbox in seq order
from where it left off, so a lost wake-up delays an event but never loses or reorders it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocket

from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.db.session import make_sessionmaker
from renkei.notify import delivery, listener, service, tickets
from renkei.notify.models import Audience
from renkei.notify.service import Event, Kind

log = logging.getLogger("renkei.notify")

T = TypeVar("T")
BATCH = 500
STOP_TIMEOUT_S = 10.0
CANCEL_RESEND_S = 0.5

# Close codes (4000-4999 are the application's). A client reconnects with a new ticket and its cursor.
CLOSE_GONE = 0  # the client went away; nothing to send
CLOSE_INVALID = 4400  # first message missing or malformed
CLOSE_UNAUTHORISED = 4401  # ticket unknown, expired or already used
CLOSE_SESSION_ENDED = 4403  # logout, account disabled, session expired or idle
CLOSE_AUTH_TIMEOUT = 4408  # no auth message in time
CLOSE_REPLACED = 4409  # the user opened more sockets than allowed; the oldest goes
CLOSE_SLOW = 4429  # the client did not keep up; resume from the cursor
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013


async def _cancel_and_wait(tasks: list[asyncio.Task[Any]], timeout: float) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait for them, at most `timeout` seconds; return those still running.

    The cancellation is sent again every CANCEL_RESEND_S: a task that swallowed one (as `asyncio.wait_for`
    can on Python 3.11 when its result lands in the same loop turn) still stops.
    """
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(CANCEL_RESEND_S, remaining))
    return pending

class Connection:
    """One authenticated socket. `live` becomes true once replay has caught up with the dispatcher."""

    __slots__ = ("websocket", "actor", "queue", "live", "sent_seq", "close_code", "close_reason", "_task")

    def __init__(self, websocket: WebSocket, actor: Actor, *, queue_size: int) -> None:
        self.websocket = websocket
        self.actor = actor
        # Bounded: a client that stops reading is dropped, not buffered without limit.
        self.queue: asyncio.Queue[tuple[int, str | None]] = asyncio.Queue(queue_size)
        self.live = False
        self.sent_seq = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._task = asyncio.current_task()

    @property
    def user_id(self) -> uuid.UUID:
        return self.actor.user_id

    @property
    def session_id(self) -> uuid.UUID:
        return self.actor.session_id

    def offer(self, seq: int, text: str | None) -> None:
        """Queue an event (or, with `text` None, a heartbeat covering everything up to `seq`)."""
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.abort(CLOSE_SLOW, "slow_consumer")

    def abort(self, code: int, reason: str) -> None:
        """End the connection from outside its task: the serving task is cancelled and closes the socket."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            if self._task is not None:
                self._task.cancel()


def _read_engine(engine: Engine) -> tuple[Engine, bool]:
    """The engine the hub reads with, and whether the hub owns it.

    On SQLite every app transaction begins IMMEDIATE (it takes the write lock), which the hub's reads do
    not need: they use their own connections in autocommit mode, each statement reading the latest
    commit under WAL without blocking writers.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return engine, False
    reader = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    return reader, True


class Hub:
    def __init__(self, settings: Settings, *, engine: Engine, write_sessionmaker: sessionmaker[Session],
                 enabled: bool = True) -> None:
        self.settings = settings
        self.enabled = enabled
        self._engine = engine
        self._write = write_sessionmaker
        self._read: sessionmaker[Session] | None = None
        self._reader: Engine | None = None
        self._owns_reader = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        # Set while no dispatcher batch is in flight between the database and the sockets.
        self._settled = asyncio.Event()
        self._settled.set()
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: set[Connection] = set()
        self._by_user: dict[uuid.UUID, list[Connection]] = {}
        self._decisions = delivery.Decisions(settings.notify_decision_ttl_seconds)
        self.running = False
        self._positioned = False
        # The dispatcher has read the outbox up to `fetched_seq` and handed out everything up to
        # `delivered_seq`; a replaying socket goes live only once its cursor has reached `fetched_seq`.
        self.fetched_seq = 0
        self.delivered_seq = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled or self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="renkei-hub")
        self._reader, self._owns_reader = _read_engine(self._engine)
        self._read = make_sessionmaker(self._reader)
        self.running = True
        self._tasks = [asyncio.create_task(self._dispatch_forever(), name="renkei-hub-dispatch"),
                       asyncio.create_task(self._heartbeat_forever(), name="renkei-hub-heartbeat")]
        if self._engine.dialect.name == "postgresql":
            url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._tasks.append(asyncio.create_task(
                listener.listen(url, channel=service.CHANNEL, on_wake=self.wake,
                                check_every=self.settings.ws_heartbeat_seconds),
                name="renkei-hub-listener"))

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        stuck = await _cancel_and_wait(self._tasks, STOP_TIMEOUT_S)
        for task in stuck:
            log.error("event hub task %s did not stop when cancelled", task.get_name())
        self._tasks = []
        for conn in list(self._conns):
            conn.abort(CLOSE_RESTART, "restart")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_reader and self._reader is not None:
            self._reader.dispose()

    def wake(self) -> None:
        """Ask the dispatcher to read the outbox; safe from any thread."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                wakeup.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(wakeup.set)

    def after_commit(self, session: Session) -> None:
        """The app's after-commit hook: wake the dispatcher if the transaction appended events."""
        if session.info.pop(service.APPENDED_KEY, None) is not None:
            self.wake()

    # -- database work off the event loop ----------------------------------------------------

    def _in_session(self, maker: sessionmaker[Session], commit: bool, fn: Callable[..., T], *args: Any,
                    **kwargs: Any) -> T:
        with maker() as session:
            result = fn(session, *args, **kwargs)
            if commit:
                session.commit()
            return result

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        assert self._loop is not None and self._read is not None
        call = partial(self._in_session, self._read, False, fn, *args, **kwargs)
        return await self._loop.run_in_executor(self._executor, call)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        assert self._loop is not None
        call = partial(self._in_session, self._write, True, fn, *args, **kwargs)
        return await self._loop.run_in_executor(self._executor, call)

    # -- connections ---------------------------------------------------------------------------

    def full(self) -> bool:
        return len(self._conns) >= self.settings.ws_max_connections

    def register(self, conn: Connection) -> None:
        """Subscribe before replay: session-ended events reach the socket while it catches up."""
        mine = self._by_user.setdefault(conn.user_id, [])
        while len(mine) >= self.settings.ws_max_connections_per_user:
            oldest = mine.pop(0)
            self._conns.discard(oldest)
            oldest.abort(CLOSE_REPLACED, "replaced")
        mine.append(conn)
        self._conns.add(conn)

    def unregister(self, conn: Connection) -> None:
        self._conns.discard(conn)
        mine = self._by_user.get(conn.user_id)
        if mine is not None:
            if conn in mine:
                mine.remove(conn)
            if not mine:
                del self._by_user[conn.user_id]

    def go_live(self, conn: Connection, cursor: int) -> bool:
        """Switch a replaying socket to live delivery if its replay reached what the dispatcher has read
        and no batch is in flight; otherwise the caller waits for `settled` and replays further.

        Runs on the event loop with no await inside, so no batch can slip between the check and the switch.
        """
        if not self._settled.is_set() or cursor < self.fetched_seq or conn.close_code is not None:
            return False
        conn.live, conn.sent_seq = True, max(conn.sent_seq, cursor)
        return True

    async def settled(self) -> None:
        """Wait until no batch is in flight."""
        await self._settled.wait()

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- the dispatcher ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Started and positioned on the outbox: sockets are accepted."""
        return self.running and self._positioned

    async def _position(self) -> None:
        """Start from the outbox's head. The app starts even while its database is unreachable or not yet
        migrated (readiness reports that); the hub waits for it and refuses sockets meanwhile."""
        delay = 0.5
        while True:
            try:
                self.fetched_seq = self.delivered_seq = await self.read(service.head)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event hub waits for the database (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._positioned = True
            log.info("event hub started at seq %s", self.fetched_seq)
            return

    async def _dispatch_forever(self) -> None:
        assert self._wakeup is not None
        await self._position()
        while True:
            # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives together with
            # the wake-up, and the dispatcher would outlive `stop` (a shutdown that never ends).
            try:
                async with asyncio.timeout(self.settings.notify_poll_seconds):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Live sockets may have missed part of a batch: they reconnect and replay from their cursor.
                log.exception("event dispatch failed; live sockets are asked to reconnect")
                for conn in [c for c in self._conns if c.live]:
                    conn.abort(CLOSE_TRY_AGAIN, "try_again")
                await asyncio.sleep(1.0)

    async def _drain(self) -> None:
        while True:
            # While a batch is in flight no socket may go live (see go_live), so the users it is planned
            # for, taken here, are all the live sockets that will exist when it is handed out.
            actors = {c.user_id: c.actor for c in self._conns if c.live}
            self._settled.clear()
            try:
                events, plan = await self.read(delivery.fetch_and_plan, self._decisions,
                                               after=self.fetched_seq, limit=BATCH, actors=actors)
                if not events:
                    return
                self.fetched_seq = events[-1].seq
                self._apply_control(events)
                for ev, user_ids in plan:
                    text = ev.message()
                    for user_id in user_ids:
                        for conn in self._by_user.get(user_id, ()):
                            if conn.live:
                                conn.offer(ev.seq, text)
                self.delivered_seq = events[-1].seq
            finally:
                self._settled.set()
            if len(events) < BATCH:
                return

    def _apply_control(self, events: list[Event]) -> None:
        for ev in events:
            if ev.audience != Audience.control or ev.kind != Kind.sessions_ended:
                continue
            session_id, keep = ev.refs.get("session_id"), ev.refs.get("keep")
            for conn in list(self._conns):
                if session_id is not None:
                    hit = str(conn.session_id) == session_id
                else:
                    hit = conn.user_id == ev.user_id and str(conn.session_id) != keep
                if hit:
                    conn.abort(CLOSE_SESSION_ENDED, "session_ended")

    # -- heartbeats ------------------------------------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ws_heartbeat_seconds)
            conns = list(self._conns)
            if not conns:
                continue
            try:
                alive = await self.read(tickets.live_session_ids, settings=self.settings,
                                        session_ids=[c.session_id for c in conns])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not re-check the sessions of open sockets", exc_info=True)
                alive = None
            for conn in conns:
                if alive is not None and conn.session_id not in alive:
                    # Expired, idle or ended without an event reaching us: the sign-in is over.
                    conn.abort(CLOSE_SESSION_ENDED, "session_ended")
                elif conn.live:
                    conn.offer(self.delivered_seq, None)
