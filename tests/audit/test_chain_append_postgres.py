"""PostgreSQL appends audit rows in one round trip, against the head this process last committed; the
database checks that guess under the chain's lock (migration 0011), so a wrong one costs a second call and
never forks or breaks the chain.

Real, committed transactions on the test database, as in test_chain_concurrency.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from renkei.audit import service as audit
from renkei.audit.models import AuditEvent
from renkei.db.session import make_sessionmaker
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the PostgreSQL append function")
APPEND = "SELECT seq, mac, appended FROM audit_append"


def _commit_rows(sessions, keyring, reason: str, rows: int = 2) -> list[str]:
    """Queue and commit `rows` audit rows; the statements the append sent."""
    sent: list[str] = []
    with sessions() as s:
        for n in range(rows):
            audit.record(s, actor=None, action="lookup", allowed=True, reason=f"{reason}_{n}")
        listener = lambda *args: sent.append(args[2].split("(")[0].strip())  # noqa: E731
        event.listen(s.get_bind(), "before_cursor_execute", listener)
        try:
            audit.write_pending(s, keyring)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", listener)
        s.commit()
    return sent


def _count(sessions, reason: str) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.reason.like(f"{reason}_%")))


def test_an_append_after_this_processs_own_commit_is_one_call(engine, keyring):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        anchor = audit.head(s)[0]
    _commit_rows(sessions, keyring, "first_of_two")
    assert _commit_rows(sessions, keyring, "second_of_two") == [APPEND]
    with sessions() as s:
        result = audit.verify(s, keyring, after_seq=anchor)
    assert result.ok, result.problem


@pytest.mark.parametrize("guess", ["behind (another process appended since)", "ahead (a restored database)",
                                   "same number, another row (a restored database)"])
def test_a_wrong_guess_is_corrected_under_the_lock_and_the_chain_stays_whole(engine, keyring, guess):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        anchor, anchor_mac = audit.head(s)
    database = str(engine.url)
    if guess.startswith("behind"):
        # What this process last committed, before other rows were appended by someone else.
        _commit_rows(sessions, keyring, "before_the_others")
        remembered = audit._committed_heads[database]
        with sessions() as s:
            for n in range(3):
                audit.record(s, actor=None, action="lookup", allowed=True, reason=f"by_another_process_{n}")
            audit.write_pending(s, keyring)
            s.commit()
        audit._committed_heads[database] = remembered
    elif guess.startswith("ahead"):
        audit._committed_heads[database] = (anchor + 1000, bytes(32))
    else:
        assert anchor_mac != bytes.fromhex("ab" * 32)
        audit._committed_heads[database] = (anchor, bytes.fromhex("ab" * 32))
    sent = _commit_rows(sessions, keyring, f"after_a_wrong_guess_{guess[:5]}", rows=3)
    assert sent == [APPEND, APPEND]
    assert _count(sessions, f"after_a_wrong_guess_{guess[:5]}") == 3
    with sessions() as s:
        result = audit.verify(s, keyring, after_seq=anchor)
        assert audit._committed_heads[database][0] == audit.head(s)[0]
    assert result.ok, result.problem


def test_an_append_rolled_back_is_not_taken_as_the_head(engine, keyring):
    sessions = make_sessionmaker(engine)
    _commit_rows(sessions, keyring, "committed_before_a_rollback")
    database = str(engine.url)
    remembered = audit._committed_heads[database]
    with sessions() as s:
        audit.record(s, actor=None, action="lookup", allowed=True, reason="rolled_back_0")
        audit.write_pending(s, keyring)
        s.rollback()
        # The same session goes on and commits other work (as a failed request's after-rollback replay does).
        s.execute(select(func.count()).select_from(AuditEvent))
        s.commit()
    assert audit._committed_heads[database] == remembered
    assert _count(sessions, "rolled_back") == 0
    # And the next append, guessing from the committed head, is one call.
    assert _commit_rows(sessions, keyring, "after_the_rollback") == [APPEND]


def test_rows_stored_through_json_are_stored_exactly_as_their_macs_cover_them(engine, keyring):
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        anchor = audit.head(s)[0]
    awkward = ["理由 \u2028 \"quoted\" \\ back\tslash\n", "🏥 emoji", "  spaced  ", "'; DROP TABLE x; --"]
    for _round in range(2):  # the second round appends with a guess, in one call
        with sessions() as s:
            for n, text in enumerate(awkward):
                row = audit.record(s, actor=None, action="lookup", allowed=True, reason=f"json_{n}")
                row.client_addr = text[:64]
                row.add_targets([f"id-{text}"])
            audit.write_pending(s, keyring)
            s.commit()
    with sessions() as s:
        stored = set(s.scalars(select(AuditEvent.client_addr).where(AuditEvent.seq > anchor,
                                                                      AuditEvent.reason.like("json_%"))))
        result = audit.verify(s, keyring, after_seq=anchor)
    assert stored == {text[:64] for text in awkward}
    assert result.ok, result.problem
