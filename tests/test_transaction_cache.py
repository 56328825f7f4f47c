"""Facts read once per transaction (`db.session.cached`): reused until the transaction writes their tables."""

from __future__ import annotations

from sqlalchemy import text, update

from renkei.db.session import cached
from renkei.patients.models import PatientKey

TABLES = frozenset({"patient_key"})


def counting_loader():
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    return calls, load


def test_a_fact_is_loaded_once_per_transaction(db):
    calls, load = counting_loader()
    assert cached(db, "t", "k", load, tables=TABLES) == 1
    assert cached(db, "t", "k", load, tables=TABLES) == 1
    assert len(calls) == 1


def test_a_textual_select_keeps_the_facts_read(db):
    # pg_advisory_xact_lock and pg_notify are textual SELECTs: they write no table.
    calls, load = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    db.execute(text("SELECT 1"))
    db.execute(text("  select 2"))
    assert cached(db, "t", "k", load, tables=TABLES) == 1 and len(calls) == 1


def test_a_textual_write_forgets_everything(db):
    calls, load = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    db.execute(text("UPDATE patient_key SET active = active WHERE 1 = 0"))
    assert cached(db, "t", "k", load, tables=TABLES) == 2


def test_a_statement_writing_a_cached_table_forgets_its_facts_only(db):
    calls, load = counting_loader()
    other_calls, other = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    cached(db, "other", "k", other, tables=frozenset({"audit_event"}))
    db.execute(update(PatientKey).where(PatientKey.key_id == "none").values(active=False))
    assert cached(db, "t", "k", load, tables=TABLES) == 2
    assert cached(db, "other", "k", other, tables=frozenset({"audit_event"})) == 1


def test_a_rollback_forgets_everything(db):
    calls, load = counting_loader()
    db.execute(text("SELECT 1"))  # the transaction begins with its first statement
    cached(db, "t", "k", load, tables=TABLES)
    db.rollback()
    assert cached(db, "t", "k", load, tables=TABLES) == 2
