"""Facts read once per transaction (`db.session.cached`): reused until the transaction writes their tables."""

from __future__ import annotations

from sqlalchemy import select, text, update

from renkei.db.session import WRITES, cached
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


def test_a_statement_declared_to_write_nothing_keeps_the_facts_read(db):
    # The advisory lock calls of the outbox and the audit chain are textual SQL that writes no table.
    _, load = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    db.execute(text("SELECT 1").execution_options(**{WRITES: ()}))
    assert cached(db, "t", "k", load, tables=TABLES) == 1


def test_textual_sql_not_so_declared_forgets_everything(db):
    _, load = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    db.execute(text("SELECT 1"))
    assert cached(db, "t", "k", load, tables=TABLES) == 2
    db.execute(text("UPDATE patient_key SET active = active WHERE 1 = 0"))
    assert cached(db, "t", "k", load, tables=TABLES) == 3


def test_a_select_declared_to_write_a_table_forgets_its_facts(db):
    # The outbox append on PostgreSQL is a SELECT over an INSERT in a CTE.
    _, load = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    db.execute(select(PatientKey.key_id).limit(1).execution_options(**{WRITES: ("patient_key",)}))
    assert cached(db, "t", "k", load, tables=TABLES) == 2


def test_a_statement_writing_a_cached_table_forgets_its_facts_only(db):
    _, load = counting_loader()
    _, other = counting_loader()
    cached(db, "t", "k", load, tables=TABLES)
    cached(db, "other", "k", other, tables=frozenset({"audit_event"}))
    db.execute(update(PatientKey).where(PatientKey.key_id == "none").values(active=False))
    assert cached(db, "t", "k", load, tables=TABLES) == 2
    assert cached(db, "other", "k", other, tables=frozenset({"audit_event"})) == 1


def test_a_rollback_forgets_everything(db):
    _, load = counting_loader()
    db.execute(text("SELECT 1"))  # the transaction begins with its first statement
    cached(db, "t", "k", load, tables=TABLES)
    db.rollback()
    assert cached(db, "t", "k", load, tables=TABLES) == 2
