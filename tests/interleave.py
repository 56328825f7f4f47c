"""Two requests interleaved at a chosen step, on a committed database (see tests/crypto/live.py).

The first request is held inside its transaction just after a chosen call; the second is sent then, and the
first goes on once the second has its answer (or after HOLD_S, when the second waits for the first).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from renkei.app import create_app
from renkei.config import Settings
from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from tests import factories
from tests.crypto import live

HOLD_S = 3  # how long the held request waits for the other one before going on


def hold_first_call(monkeypatch, owner, name: str, *, locking: bool = False
                    ) -> tuple[threading.Event, threading.Event]:
    """Hold the request that first calls `owner.name` (with `for_update=True` when `locking`) just after the
    call, until `go_on` is set or HOLD_S has passed; `held` says the hold has begun. Other calls run
    straight through."""
    held, go_on, original = threading.Event(), threading.Event(), getattr(owner, name)

    def holding(*args, **kwargs):
        result = original(*args, **kwargs)
        if not held.is_set() and (kwargs.get("for_update") or not locking):
            held.set()
            go_on.wait(HOLD_S)
        return result

    monkeypatch.setattr(owner, name, holding)
    return held, go_on


def run(settings: Settings, first: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
        second: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
        held: threading.Event, go_on: threading.Event) -> tuple[httpx.Response, httpx.Response]:
    """Send `first`; once it is held, send `second` and let `first` go on when `second` has its answer."""
    async def both() -> tuple[httpx.Response, httpx.Response]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                async def then_second() -> httpx.Response:
                    assert await asyncio.to_thread(held.wait, 10), "the first request was never held"
                    try:
                        return await second(client)
                    finally:
                        go_on.set()
                one, two = await asyncio.gather(first(client), then_second())
                return one, two
    return asyncio.run(both())


@dataclass
class Team:
    patient_id: uuid.UUID
    consent_id: uuid.UUID
    nurse_id: uuid.UUID
    physician: dict[str, str]
    colleague: dict[str, str]
    nurse: dict[str, str]


def team(settings: Settings) -> Team:
    """A patient with two physicians of one clinic and a visiting nurse, each on their own tablet."""
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        clinic = factories.make_org(session, name="同時操作クリニック", kind="home_care_clinic")
        station = factories.make_org(session, name="同時操作訪問看護", kind="visiting_nurse_station")
        physician, colleague = (factories.make_user(session, clinic, profession="physician")
                                for _ in range(2))
        nurse = factories.make_user(session, station, profession="nurse")
        patient_id = factories.make_patient(session, keyring, physician)
        for user, role in ((colleague, "physician"), (nurse, "visiting_nurse")):
            patient_service.add_member(session, actor=factories.actor_of(physician), patient_id=patient_id,
                                       data=patient_service.MembershipIn(user_id=user.id, team_role=role,
                                                                         start_date=today_jst()))
        consent_id = factories.grant_consent(session, keyring, patient_id, physician)
        headers = [factories.auth_headers(session, settings, keyring, user)
                   for user in (physician, colleague, nurse)]
        return Team(patient_id, consent_id, nurse.id, *headers)
