"""Engine construction: SQLite in WAL with synchronous=FULL and immediate transactions; PostgreSQL pooled."""

from __future__ import annotations

import select
import sqlite3
import threading
from collections import deque
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_S = 30
# Execution option of a statement whose PostgreSQL results should come in the binary format: ciphertexts
# (bytea) then arrive as bytes instead of hex text that libpq must unescape (on a timeline page, 6 % of the
# request's CPU time), and timestamps and UUIDs need no parsing. Opt-in, per statement: SQLAlchemy's catalog
# queries (reflection, migrations) expect text. Only for statements whose columns read the same in both
# formats (uuid, text, integers, boolean, bytea, timestamp, date): not float4 (binary is the exact float),
# enum or other types psycopg has no binary loader for (bytes), or json. Ignored on SQLite.
BINARY_RESULTS = "renkei_binary_results"


def make_engine(url: str, *, echo: bool = False, static: bool = False) -> Engine:
    """Create the engine for a database URL."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}}
        static = static or url in ("sqlite://", "sqlite:///:memory:")
        if static:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        # One shared connection (StaticPool) never has two transactions to queue.
        _configure_sqlite(engine, queue=None if static else WriteQueue())
        return engine
    # TCP keepalives (as the event listener's connection has): a peer that vanished without closing (a NAT
    # or firewall timeout, a failover) is found by the kernel within a minute of idleness, and the socket
    # poll at checkout then sees it.
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, connect_args={
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3})
    event.listen(engine, "checkout", _refuse_closed_connection)
    event.listen(engine, "before_cursor_execute", _binary_results_when_asked)
    return engine


def _binary_results_when_asked(_conn: Any, cursor: Any, _statement: str, _params: Any, context: Any,
                               _executemany: bool) -> None:
    if context is not None and context.execution_options.get(BINARY_RESULTS):
        cursor.format = psycopg.pq.Format.BINARY


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip: a pooled PostgreSQL connection that the server
    has ended (a restart, `pg_terminate_backend`, an idle timeout) is replaced before a request uses it.

    SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: one more round trip for every request.
    Here the connection's socket is polled instead (no I/O): an idle connection has nothing to read unless
    the server has sent its farewell (the FATAL notice, end of file). Raising DisconnectionError makes the
    pool discard the connection and check out another (SQLAlchemy's documented checkout-event recipe). A
    peer that vanished without a word is found by TCP keepalive after a minute of idleness (the socket then
    reports the error); within that minute, by the request's first statement, which fails.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("connection closed")
    try:
        socket = dbapi_connection.fileno()
    except psycopg.OperationalError as exc:  # libpq holds no socket any more
        raise DisconnectionError("connection closed") from exc
    poller = select.poll()
    poller.register(socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise DisconnectionError("the server ended the connection")


class WriteQueue:
    """A first-come, first-served lock: the process's SQLite transactions take turns in arrival order.

    Every transaction holds SQLite's write lock from BEGIN IMMEDIATE to its end. Left to SQLite, the threads
    of one process that wait for it sleep in its busy handler with growing back-off (up to 100 ms a nap) and
    whoever polls at the right moment wins, so under concurrency a request could wait seconds while the lock
    sat free. Queued here, a waiter is woken the moment the previous transaction ends. Other processes on
    the same file still meet SQLite's own lock and busy timeout.

    The holder is the DBAPI connection whose transaction it is, not a thread: a request's transaction may
    begin and end in different thread-pool threads.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[tuple[threading.Lock, object]] = deque()
        self._holder: object | None = None

    def acquire(self, holder: object, timeout: float) -> bool:
        with self._mutex:
            if self._holder is None:
                self._holder = holder
                return True
            baton = threading.Lock()
            baton.acquire()
            waiter = (baton, holder)
            self._waiters.append(waiter)
        if baton.acquire(timeout=timeout):
            return True  # handed over by release()
        with self._mutex:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return True  # handed over while timing out
            return False

    def release(self, holder: object) -> None:
        """End `holder`'s turn; a no-op for a connection that does not hold it (a rollback after commit)."""
        with self._mutex:
            if self._holder is not holder:
                return
            if self._waiters:
                baton, self._holder = self._waiters.popleft()
                baton.release()  # ownership passes straight to the next in line
            else:
                self._holder = None


def _configure_sqlite(engine: Engine, *, queue: WriteQueue | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see do_begin below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    dialect = engine.dialect
    base_commit, base_rollback = dialect.do_commit, dialect.do_rollback

    def release(connection: Any) -> None:
        if queue is not None:
            queue.release(connection.driver_connection)

    # The dialect's transaction hooks rather than engine events: "commit" and "rollback" events fire before
    # the database call, and the queue must move on only once the transaction has really ended.
    def do_begin(connection: Any) -> None:
        # Every request may append to the audit chain, so take the write lock up front: a deferred
        # transaction that reads and then writes fails with SQLITE_BUSY_SNAPSHOT under WAL.
        driver = connection.driver_connection
        if queue is not None and not queue.acquire(driver, timeout=BUSY_TIMEOUT_S):
            raise sqlite3.OperationalError("database is locked")
        try:
            driver.execute("BEGIN IMMEDIATE")
        except BaseException:
            release(connection)
            raise

    def do_commit(connection: Any) -> None:
        try:
            base_commit(connection)
        finally:
            # A failed COMMIT is followed by a rollback, which finds the turn already passed on.
            release(connection)

    def do_rollback(connection: Any) -> None:
        try:
            base_rollback(connection)
        finally:
            release(connection)

    dialect.do_begin = do_begin  # type: ignore[method-assign]
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_conn: Any, _record: Any, _exc: Any) -> None:
        # A connection dropped mid-transaction: closing it ends its SQLite transaction; free its turn too.
        if queue is not None:
            queue.release(dbapi_conn)
