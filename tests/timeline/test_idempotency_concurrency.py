"""Retries that overlap: a tablet on a flaky network resends a post while the first is still being stored.

Real, committed transactions on a database of the test's own (a scratch schema on PostgreSQL), with the
requests sent together to the application's thread pool: the `client` fixture's rolled-back transaction
would serialise them. On PostgreSQL the first request holds its entry back until another has reached the
key's claim, so the claims really race; SQLite runs a process's transactions one after another (BEGIN
IMMEDIATE), so there the retries only follow each other closely.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import httpx
from sqlalchemy import func, select

from renkei.app import create_app
from renkei.idempotency import service as idempotency
from renkei.idempotency.models import IdempotencyKey
from renkei.timeline import service as timeline
from renkei.timeline.models import TimelineEntry
from tests import factories
from tests.crypto import live

RETRIES = 8


def _posting_physician(settings) -> tuple[uuid.UUID, dict[str, str]]:
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        org = factories.make_org(session, name="同時送信クリニック", kind="home_care_clinic")
        doctor = factories.make_user(session, org, profession="physician",
                                     email=f"retry-{uuid.uuid4().hex[:12]}@test.example")
        patient_id = factories.make_patient(session, keyring, doctor)
        factories.grant_consent(session, keyring, patient_id, doctor)
        return patient_id, factories.auth_headers(session, settings, keyring, doctor)


async def _send_together(settings, patient_id: uuid.UUID, headers: dict[str, str]) -> list[httpx.Response]:
    app = create_app(settings)
    body = {"sheet": "message", "version": 1, "data": {"text": "夜間に発熱あり、解熱剤で対応しました"}}
    keyed = {**headers, "Idempotency-Key": "tablet-retry-0001"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            url = f"/api/v1/patients/{patient_id}/entries"
            together = await asyncio.gather(*(client.post(url, headers=keyed, json=body)
                                              for _ in range(RETRIES)))
            later = await client.post(url, headers=keyed, json=body)
    return [*together, later]


def _hold_the_first_entry_until_a_retry_claims(monkeypatch) -> threading.Event:
    """On PostgreSQL: the first request to produce its entry waits until a second request has started to
    claim the same key (which then waits on the unique index for the first to commit)."""
    claiming, overlapped = threading.Semaphore(0), threading.Event()
    claim, create = idempotency._claim, timeline.create_entry

    def counted_claim(*args, **kwargs):
        claiming.release()
        return claim(*args, **kwargs)

    def held_create(*args, **kwargs):
        if not overlapped.is_set() and claiming.acquire(timeout=10) and claiming.acquire(timeout=10):
            overlapped.set()
        return create(*args, **kwargs)

    monkeypatch.setattr(idempotency, "_claim", counted_claim)
    monkeypatch.setattr(timeline, "create_entry", held_create)
    return overlapped


def test_overlapping_retries_of_one_post_store_one_entry_and_all_get_its_response(tmp_path, monkeypatch):
    racing = live.BACKEND == "postgres"
    overlapped = _hold_the_first_entry_until_a_retry_claims(monkeypatch) if racing else None
    with live.scratch_database(tmp_path) as url:
        settings = live.migrate(live.settings_for(tmp_path, url))
        patient_id, headers = _posting_physician(settings)
        responses = asyncio.run(_send_together(settings, patient_id, headers))
        with live.committing_session(settings) as session:
            stored = session.scalar(select(func.count()).select_from(TimelineEntry)
                                    .where(TimelineEntry.patient_id == patient_id))
            keys = session.scalar(select(func.count()).select_from(IdempotencyKey))
    # Each overlapping retry waits for the first to commit (SQLite's write lock; PostgreSQL's unique index)
    # and then replays it: one entry, one key, every caller holding the same entry.
    assert [r.status_code for r in responses] == [201] * (RETRIES + 1), [r.text for r in responses]
    originals = [r for r in responses if r.headers.get("idempotent-replayed") != "true"]
    assert len(originals) == 1
    assert {r.json()["id"] for r in responses} == {originals[0].json()["id"]}
    assert {r.headers["etag"] for r in responses} == {originals[0].headers["etag"]}
    assert (stored, keys) == (1, 1)
    assert overlapped is None or overlapped.is_set(), "no retry claimed the key while the first was in flight"
