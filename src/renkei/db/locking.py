"""Row locks for changes that must take turns (PostgreSQL; SQLite holds its write lock from BEGIN already)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

# FOR NO KEY UPDATE, not FOR UPDATE: a request that has inserted a row referencing the locked one (its
# Idempotency-Key's patient, a read receipt's entry) holds a KEY SHARE lock on it, which FOR UPDATE conflicts
# with, so two such requests would deadlock; two NO KEY UPDATE locks still exclude each other.
_NO_KEY_UPDATE = {"key_share": True}


def locked(statement: S) -> S:
    """The statement's rows locked until the transaction ends, and read as committed once the lock is
    granted: objects an earlier load put in the session are refreshed, not returned as they were."""
    return statement.with_for_update(**_NO_KEY_UPDATE).execution_options(populate_existing=True)


def get_locked(session: Session, model: type[T], ident: Any) -> T | None:
    """`session.get` of one row, locked and read as committed like `locked`."""
    return session.get(model, ident, with_for_update=_NO_KEY_UPDATE, populate_existing=True)
