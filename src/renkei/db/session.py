"""One transaction per request: the session dependency commits before the response is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from renkei.errors import DomainError

Hook = Callable[[Session], None]


def make_sessionmaker(bind: object, **kw: object) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kw)  # type: ignore[call-overload]


def get_session(request: Request) -> Iterator[Session]:
    """Yield a session; commit if the handler succeeded, roll back otherwise.

    Pre-commit hooks (the audit chain) run inside the transaction. Work queued with
    `after_rollback(session, fn)` (audit rows of denials, login failure counters) must survive a
    request that fails with a DomainError, so it is replayed in a fresh transaction after rollback.
    """
    state = request.app.state
    session: Session = state.sessionmaker()
    session.info["request"] = request
    try:
        yield session
        for hook in state.precommit_hooks:
            hook(session)
        session.commit()
    except BaseException as exc:
        session.rollback()
        replay = session.info.pop("after_rollback", [])
        if isinstance(exc, DomainError) and replay:
            for fn in replay:
                fn(session)
            for hook in state.precommit_hooks:
                hook(session)
            session.commit()
        raise
    else:
        for hook in state.after_commit_hooks:
            hook(session)
        for fn in session.info.pop("after_commit", []):
            fn()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def after_rollback(session: Session, fn: Hook) -> None:
    """Queue work that must be persisted even if the request fails (it also runs on success paths by caller)."""
    session.info.setdefault("after_rollback", []).append(fn)


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Queue a side effect (waking the event hub) for after a successful commit."""
    session.info.setdefault("after_commit", []).append(fn)
