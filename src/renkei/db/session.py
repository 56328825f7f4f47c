"""One transaction per request: the session dependency commits before the response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from renkei.errors import DomainError

Hook = Callable[[Session], None]
T = TypeVar("T")
_CACHE_KEY = "transaction_cache"
# Execution option naming the tables a statement writes, for statements whose kind does not say (an INSERT
# inside a SELECT's CTE, a textual lock call): `()` for none. See _forget_written.
WRITES = "renkei_writes"


def make_sessionmaker(bind: object, **kw: object) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kw)  # type: ignore[call-overload]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield a session; commit if the handler succeeded, roll back otherwise.

    Pre-commit hooks (the audit chain) run inside the transaction. Work queued with
    `after_rollback(session, fn)` (audit rows of denials, login failure counters) must survive a
    request that fails with a DomainError, so it is replayed in a fresh transaction after rollback.

    Async so that opening the session (no I/O: the connection is checked out by the first query) costs no
    thread hop; the end of the transaction is blocking database work and runs in a worker thread.
    """
    state = request.app.state
    session: Session = state.sessionmaker()
    session.info["request"] = request
    try:
        try:
            yield session
        except GeneratorExit as exc:
            # Closed without a chance to await (never in a normal request): roll back right here.
            _fail(state, session, exc)
            raise
        except BaseException as exc:
            await _end_in_thread(_fail, state, session, exc)
            raise
        await _end_in_thread(_finish, state, session)
    finally:
        session.close()


@contextmanager
def worker_session(request: Request) -> Iterator[Session]:
    """The request's session for a route that does all its database work in one worker thread (see
    `auth.dependencies.run_signed_in`), opened and ended there as `get_session` would: commit (pre-commit
    hooks, after-commit work) when the block succeeds, the rollback path (after-rollback replays) when it
    raises. No dependency and no thread hop of its own; a cancelled request cannot interrupt it (a worker
    thread runs to the end)."""
    state = request.app.state
    session: Session = state.sessionmaker()
    session.info["request"] = request
    try:
        try:
            yield session
        except BaseException as exc:
            _fail(state, session, exc)
            raise
        # (Outside the except: a commit that fails has already been rolled back by _finish.)
        _finish(state, session)
    finally:
        session.close()


async def _end_in_thread(fn: Callable[..., None], *args: Any) -> None:
    """Run the end of a transaction in a worker thread, as FastAPI ends a sync dependency: with a limiter of
    its own, because waiting for a thread of the shared pool while holding the database (SQLite's write lock,
    a pooled connection) can deadlock against requests that hold those threads waiting for it; and shielded,
    so that a cancelled request still commits or rolls back (and replays its after-rollback work)."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(partial(fn, *args), limiter=anyio.CapacityLimiter(1))


def _finish(state: Any, session: Session) -> None:
    try:
        for hook in state.precommit_hooks:
            hook(session)
        session.commit()
    except BaseException as exc:
        _fail(state, session, exc)
        raise
    _after_commit(state, session)


def _fail(state: Any, session: Session, exc: BaseException) -> None:
    session.rollback()
    session.info.pop("after_commit", None)  # side effects of the work just rolled back
    replay = session.info.pop("after_rollback", [])
    if isinstance(exc, DomainError) and replay:
        for fn in replay:
            fn(session)
        for hook in state.precommit_hooks:
            hook(session)
        session.commit()
        # The replay may have appended events (a draft conflict, sessions ended after refresh-token reuse):
        # wake the hub for them now rather than at its next poll.
        _after_commit(state, session)


def _after_commit(state: Any, session: Session) -> None:
    for hook in state.after_commit_hooks:
        hook(session)
    for fn in session.info.pop("after_commit", []):
        fn()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def upsert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for `table` with ON CONFLICT clauses, in the session's dialect (SQLite or PostgreSQL)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


def after_rollback(session: Session, fn: Hook) -> None:
    """Queue work that must be persisted even if the request fails (it also runs on success paths by caller)."""
    session.info.setdefault("after_rollback", []).append(fn)


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Queue a side effect (waking the event hub) for after a successful commit."""
    session.info.setdefault("after_commit", []).append(fn)


# -- facts read once per transaction --------------------------------------------------------------


def cached(
    session: Session, namespace: str, key: Hashable, load: Callable[[], T], *, tables: frozenset[str],
) -> T:
    """`load()` once per transaction for `key`; the value is dropped as soon as this session writes to one
    of `tables` (a flush or a DML statement), rolls back (a savepoint too) or ends its transaction.

    For facts that several steps of one request need (the access decision, a patient's data key): the
    second step reuses the first one's read unless the request itself changed what it was read from.
    """
    spaces: dict[str, tuple[frozenset[str], dict[Hashable, Any]]] = session.info.setdefault(_CACHE_KEY, {})
    _, values = spaces.setdefault(namespace, (tables, {}))
    if key in values:
        return values[key]  # type: ignore[no-any-return]
    value = values[key] = load()
    return value


def _forget(session: Session, touched: set[str] | None) -> None:
    """Drop cached facts read from the `touched` tables (None: everything)."""
    spaces = session.info.get(_CACHE_KEY)
    if not spaces:
        return
    if touched is None:
        spaces.clear()
        return
    for namespace in [n for n, (tables, _) in spaces.items() if tables & touched]:
        del spaces[namespace]


@event.listens_for(Session, "after_flush")
def _forget_flushed(session: Session, _context: Any) -> None:
    changed = chain(session.new, session.dirty, session.deleted)
    touched = {getattr(obj, "__tablename__", "") for obj in changed}
    _forget(session, touched)


@event.listens_for(Session, "do_orm_execute")
def _forget_written(state: ORMExecuteState) -> None:
    declared = state.execution_options.get(WRITES)
    if declared is not None:
        _forget(state.session, set(declared))
        return
    if state.is_select:
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    # A statement whose target is not a plain table (textual SQL) could have written anything.
    _forget(state.session, {name} if isinstance(name, str) else None)


@event.listens_for(Session, "after_transaction_end")
def _forget_ended(session: Session, transaction: SessionTransaction) -> None:
    # The outer transaction only: a savepoint released keeps what it wrote (flushes already forgot it).
    if transaction.parent is None:
        _forget(session, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous: SessionTransaction) -> None:
    _forget(session, None)
