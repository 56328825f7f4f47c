"""Events queued during a request are appended just before it commits, and never for work rolled back."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from renkei.db.session import make_sessionmaker
from renkei.notify import service as notify
from renkei.notify.models import Audience, OutboxEvent
from renkei.notify.service import QUEUED_KEY
from tests.conftest import BACKEND


def _kinds_after(db, after: int) -> list[str]:
    return list(db.scalars(select(OutboxEvent.kind).where(OutboxEvent.seq > after).order_by(OutboxEvent.seq)))


def test_a_queued_event_is_appended_at_commit_in_the_order_queued(db):
    start = notify.head(db)
    notify.queue(db, kind="entry.created", audience=Audience.team)
    notify.queue(db, kind="summary.changed", audience=Audience.team)
    assert _kinds_after(db, start) == []
    db.commit()
    assert _kinds_after(db, start) == ["entry.created", "summary.changed"]


def test_an_event_queued_by_work_rolled_back_is_never_appended(db):
    db.commit()  # no transaction in progress: queueing begins one, which the rollback ends
    start = notify.head(db)
    db.commit()
    notify.queue(db, kind="entry.created", audience=Audience.team)
    db.rollback()
    notify.queue(db, kind="consent.recorded", audience=Audience.team)
    db.commit()
    assert _kinds_after(db, start) == ["consent.recorded"]


def test_events_queued_in_a_session_closed_without_commit_are_dropped(db, engine):
    maker = make_sessionmaker(db.get_bind())
    session = maker()
    notify.queue(session, kind="entry.created", audience=Audience.team)
    session.close()
    assert QUEUED_KEY not in session.info
    start = notify.head(db)
    session.execute(text("SELECT 1"))
    session.commit()
    assert _kinds_after(db, start) == []


def test_a_savepoint_rolled_back_drops_its_events_only(db):
    start = notify.head(db)
    db.execute(text("SELECT 1"))
    notify.queue(db, kind="entry.created", audience=Audience.team)
    with pytest.raises(RuntimeError), db.begin_nested():
        notify.queue(db, kind="entry.amended", audience=Audience.team)
        raise RuntimeError("the nested work fails")
    with db.begin_nested():
        notify.queue(db, kind="summary.changed", audience=Audience.team)
    db.commit()
    assert _kinds_after(db, start) == ["entry.created", "summary.changed"]


def test_a_bad_reference_is_refused_when_queued(db):
    with pytest.raises(ValueError, match="reference"):
        notify.queue(db, kind="entry.created", audience=Audience.team, refs={"entry_id": "<b>名前</b>"})


@pytest.mark.postgres
@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite serialises every writing transaction anyway")
def test_a_request_with_queued_events_does_not_hold_the_outbox_lock_while_it_works(engine):
    """On PostgreSQL an append holds the outbox lock until commit; a queued event takes it only at commit,
    so another writer appends and commits while the first is still building its response."""
    maker = make_sessionmaker(engine)
    done = threading.Event()

    def other_writer() -> None:
        with maker() as session:
            notify.append(session, kind="entry.created", audience=Audience.team)
            session.commit()
        done.set()

    with maker() as first:
        first.execute(text("SELECT 1"))
        notify.queue(first, kind="entry.created", audience=Audience.team)
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert done.wait(10), "the other writer waited for a transaction that had only queued its event"
        first.commit()
    thread.join(10)
