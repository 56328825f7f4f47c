"""Audit test helpers: append rows, and tamper with them the way an attacker with database access would
(the append-only triggers are switched off inside the test's transaction, which is rolled back)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from renkei.audit import service as audit
from renkei.crypto.keyring import Keyring


def append(db: Session, keyring: Keyring, count: int, *, action: str = "read_clinical") -> list[int]:
    """Write `count` chained rows now; returns their sequence numbers."""
    for n in range(count):
        audit.record(db, actor=None, action=action, allowed=n % 3 != 0, reason=f"test_{n}")
    written = audit.write_pending(db, keyring)
    assert written is not None
    before, head, _ = written
    return list(range(before + 1, head + 1))


def triggers_off(db: Session) -> None:
    """Disable the append-only and in-sequence triggers for the rest of this (rolled-back) test
    transaction."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete"))
        db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_in_sequence"))
    else:
        for trigger in ("audit_event_no_update", "audit_event_no_delete", "audit_event_in_sequence"):
            db.execute(text(f"DROP TRIGGER {trigger}"))


def checks_off(db: Session) -> None:
    """Also lift CHECK (seq > 0), as someone writing the database file directly would."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_event DROP CONSTRAINT ck_audit_event_seq_positive"))
    else:
        db.execute(text("PRAGMA ignore_check_constraints = ON"))


def checks_on(db: Session) -> None:
    """Undo `checks_off` where it outlives the test's transaction (SQLite's pragma is per connection)."""
    if db.get_bind().dialect.name != "postgresql":
        db.execute(text("PRAGMA ignore_check_constraints = OFF"))


def tamper(db: Session, sql: str, **params: Any) -> None:
    db.execute(text(sql), params)
    db.expire_all()
