"""Two ACPs of one patient posted at the same moment: the older discussion must not become the current one.

Real, committed transactions on a database of the test's own, the two posts sent together to the
application's thread pool. On PostgreSQL the newer ACP's request holds its transaction open (its row stored,
not committed) until the older one's request is seen waiting for the patient's lock (or, without the lock,
has stored its ACP), so the two really overlap; SQLite runs a process's transactions one after another
(BEGIN IMMEDIATE), so there they only follow each other.
"""

from __future__ import annotations

import threading
import uuid

import httpx
from sqlalchemy import select

from renkei.timeline import service as timeline
from renkei.timeline import views
from renkei.timeline.models import TimelineEntry
from tests import interleave
from tests.crypto import live
from tests.timeline.support import example

NEWER, OLDER = "2025-07-01", "2025-06-01"


def _overlap_the_two_postings(monkeypatch, settings) -> threading.Event:
    """The newer ACP is stored first, and its transaction stays open until the older one's request is seen
    waiting for a lock (or, unserialised, has stored its ACP against a current ACP without the newer)."""
    newer_stored, older_arrived, older_stored = threading.Event(), threading.Event(), threading.Event()
    store = timeline._store

    def held_store(session, keyring, entry, sheet, checked, now):
        if checked.data.get("record_date") == OLDER:
            newer_stored.wait(timeout=10)
            older_arrived.set()
            try:
                return store(session, keyring, entry, sheet, checked, now)
            finally:
                older_stored.set()
        store(session, keyring, entry, sheet, checked, now)
        newer_stored.set()
        older_arrived.wait(timeout=10)
        interleave.waiting_for_a_lock(settings, done=older_stored)
        return None

    monkeypatch.setattr(timeline, "_store", held_store)
    return older_arrived


def _post_both(settings, patient_id: uuid.UUID, headers: dict[str, str]) -> list[httpx.Response]:
    url = f"/api/v1/patients/{patient_id}/entries"
    return interleave.together(settings, *(
        lambda c, day=day: c.post(url, headers={**headers, "Idempotency-Key": f"acp-{day}"},
                                  json={"sheet": "acp", "version": 1,
                                        "data": example("acp", record_date=day)})
        for day in (NEWER, OLDER)))


def test_an_older_acp_posted_while_a_newer_one_is_being_stored_is_refused(tmp_path, monkeypatch):
    racing = live.BACKEND == "postgres"
    with live.scratch_database(tmp_path) as url:
        settings = live.migrate(live.settings_for(tmp_path, url))
        team = interleave.team(settings)
        patient_id, headers = team.patient_id, team.physician
        overlapped = _overlap_the_two_postings(monkeypatch, settings) if racing else None
        newer, older = _post_both(settings, patient_id, headers)
        with live.committing_session(settings) as session:
            current = views.current_acp_record(session, patient_id)
            stored = session.scalars(select(TimelineEntry.record_id).where(
                TimelineEntry.patient_id == patient_id, TimelineEntry.sheet_id == "acp")).all()
    assert overlapped is None or overlapped.is_set(), "the older ACP's request never overlapped the newer"
    # Whichever order the two reached the database in: the newer discussion is current, and an older one
    # arriving after it is refused rather than shown as the patient's current wishes.
    assert newer.status_code == 201, newer.text
    assert current == uuid.UUID(newer.json()["record_id"])
    if older.status_code == 201:
        assert not racing, "on PostgreSQL the older ACP was held back until the newer one had been stored"
        assert len(stored) == 2
    else:
        assert older.status_code == 422, older.text
        assert older.json()["fields"][0]["path"] == "/data/record_date"
        assert stored == [current]
