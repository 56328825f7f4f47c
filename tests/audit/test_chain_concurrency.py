"""Concurrent transactions extend one chain: no fork, no gap, no duplicate sequence number.

Uses real, committed transactions on the test database (not the rolled-back test transaction), as
many requests would. The rows stay (the log is append-only); other tests verify after their own anchor.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from renkei.audit import service as audit
from renkei.audit.models import AuditEvent
from renkei.db.session import make_sessionmaker

THREADS = 6
COMMITS = 8
ROWS_PER_COMMIT = 3


def test_concurrent_commits_extend_one_unbroken_chain(engine, keyring):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        anchor = audit.head(s)[0]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            start.wait()
            for c in range(COMMITS):
                with sessions() as s:
                    for r in range(ROWS_PER_COMMIT):
                        audit.record(s, actor=None, action="lookup", allowed=True, reason=f"thread_{n}_{c}_{r}")
                    audit.write_pending(s, keyring)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with sessions() as s:
        mine = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq > anchor,
                                                                            AuditEvent.reason.like("thread_%")))
        assert mine == THREADS * COMMITS * ROWS_PER_COMMIT
        result = audit.verify(s, keyring, after_seq=anchor)
    assert result.ok, result.problem
    assert result.rows >= THREADS * COMMITS * ROWS_PER_COMMIT


def test_postgresql_refuses_to_append_from_a_transaction_snapshot(engine, keyring):
    # A REPEATABLE READ transaction would read a head older than the lock's previous holder's rows.
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite holds the write lock for the whole transaction")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with make_sessionmaker(conn)() as s:
            audit.record(s, actor=None, action="lookup", allowed=True, reason="snapshot")
            with pytest.raises(DBAPIError, match="READ COMMITTED transactions only"):
                audit.write_pending(s, keyring)
            s.rollback()
