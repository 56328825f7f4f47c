"""Live delivery against a real uvicorn server and the `websockets` client: who receives what, and replay.

Each test seeds its own patient and team in the shared deployment, so the sockets of one test never see
another's events.
"""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest
from sqlalchemy import select

from renkei.patients.models import CareTeamMembership
from tests.factories import PASSWORD
from tests.notify import live
from tests.notify.live import Deployment, Server

pytestmark = pytest.mark.slow
EVENT_KEYS = {"seq", "type", "patient_id", "entry_id", "record_id", "urgent"}


def test_an_entry_posted_by_the_nurse_reaches_the_physicians_socket_as_ids_only(server: Server,
                                                                               deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)

    async def scenario():
        ws = await live.open_socket(server, physician)
        replayed, cursor = await live.until_ready(ws)
        assert replayed == []
        entry = await live.post_entry(server, nurse, world.patient_id, "夜間に38.5度の発熱", priority="urgent")
        event, took = await live.timed(live.next_event(ws, timeout=15))
        assert took < 5  # pushed on commit; the outbox poll is 60 s here
        assert set(event) == EVENT_KEYS
        assert event["type"] == "entry.created" and event["entry_id"] == entry["id"]
        assert event["patient_id"] == str(world.patient_id) and event["urgent"] is True
        assert event["seq"] > cursor
        await ws.close()
        return event

    event = asyncio.run(scenario())
    assert "発熱" not in str(event)


def test_an_outsider_receives_nothing_of_a_patient_they_do_not_treat(server: Server, deployment: Deployment):
    world = deployment.world
    outsider, physician = deployment.as_user(world.outsider), deployment.as_user(world.physician)

    async def scenario():
        watcher = await live.open_socket(server, outsider)
        member = await live.open_socket(server, physician)
        await live.until_ready(watcher)
        await live.until_ready(member)
        entry = await live.post_entry(server, deployment.as_user(world.nurse), world.patient_id)
        assert (await live.next_event(member))["entry_id"] == entry["id"]
        assert await live.quiet(watcher, 1.0) == []
        await watcher.close()
        await member.close()

    asyncio.run(scenario())


def test_an_office_a_new_consent_leaves_out_stops_receiving_at_once(server: Server, deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)

    async def scenario():
        ws = await live.open_socket(server, nurse)
        await live.until_ready(ws)
        first = await live.post_entry(server, physician, world.patient_id)
        assert (await live.next_event(ws))["entry_id"] == first["id"]
        async with httpx.AsyncClient(base_url=server.http) as http:
            r = await http.post(f"/api/v1/patients/{world.patient_id}/consents", headers=physician, json={
                "given_by": "patient", "method": "written", "scope": "individual",
                "organisation_ids": [str(world.clinic.id)], "obtained_on": date.today().isoformat(),
                "password": PASSWORD})
            assert r.status_code == 201, r.text
        await live.post_entry(server, physician, world.patient_id, "看護には共有しない記録")
        assert await live.quiet(ws, 1.0) == []
        await ws.close()

    asyncio.run(scenario())


def test_events_from_before_a_consent_withdrawal_are_not_replayed_after_it(server: Server,
                                                                         deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)

    async def scenario():
        ws = await live.open_socket(server, nurse)
        _, cursor = await live.until_ready(ws)
        await ws.close()
        await live.post_entry(server, physician, world.patient_id)
        async with httpx.AsyncClient(base_url=server.http) as http:
            r = await http.post(f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/withdraw",
                                headers=physician, json={"reason": "本人の申し出", "password": PASSWORD})
            assert r.status_code == 200, r.text
        again = await live.open_socket(server, nurse, resume_after=cursor)
        replayed, _ = await live.until_ready(again)
        assert replayed == []
        await again.close()

    asyncio.run(scenario())


def test_ending_a_membership_narrows_the_socket_at_once(server: Server, deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)
    with live.committing(deployment.settings) as session:
        membership = session.scalars(select(CareTeamMembership.id).where(
            CareTeamMembership.patient_id == world.patient_id,
            CareTeamMembership.user_id == world.nurse.id)).one()

    async def scenario():
        ws = await live.open_socket(server, nurse)
        await live.until_ready(ws)
        before = await live.post_entry(server, physician, world.patient_id)
        assert (await live.next_event(ws))["entry_id"] == before["id"]
        async with httpx.AsyncClient(base_url=server.http) as http:
            r = await http.request("DELETE", f"/api/v1/patients/{world.patient_id}/team/{membership}",
                                   headers=physician)
            assert r.status_code == 200, r.text
        await live.post_entry(server, physician, world.patient_id)
        assert await live.quiet(ws, 1.0) == []
        await ws.close()

    asyncio.run(scenario())


def test_reconnecting_with_resume_after_replays_exactly_the_missed_entries_in_order(server: Server,
                                                                                   deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)

    async def scenario():
        ws = await live.open_socket(server, physician)
        _, cursor = await live.until_ready(ws)
        await ws.close()
        missed = [await live.post_entry(server, nurse, world.patient_id, f"記録{i}") for i in range(3)]
        again = await live.open_socket(server, physician, resume_after=cursor)
        replayed, ready = await live.until_ready(again)
        assert [e["entry_id"] for e in replayed] == [m["id"] for m in missed]
        assert [e["seq"] for e in replayed] == sorted({e["seq"] for e in replayed})
        assert ready >= replayed[-1]["seq"]
        later = await live.post_entry(server, nurse, world.patient_id)
        assert (await live.next_event(again))["entry_id"] == later["id"]
        assert await live.quiet(again, 0.5) == []
        await again.close()

    asyncio.run(scenario())


def test_replay_and_live_meet_without_gaps_or_duplicates_while_entries_keep_coming(server: Server,
                                                                                 deployment: Deployment):
    world = deployment.world
    physician, nurse = deployment.as_user(world.physician), deployment.as_user(world.nurse)

    async def scenario():
        ws = await live.open_socket(server, physician)
        _, cursor = await live.until_ready(ws)
        await ws.close()
        before = [await live.post_entry(server, nurse, world.patient_id) for _ in range(5)]
        writer = asyncio.create_task(_post_many(server, nurse, world, 10))
        again = await live.open_socket(server, physician, resume_after=cursor)
        during = await writer
        received = await live.collect(again, 15, timeout=15)
        assert [e["entry_id"] for e in received] == [e["id"] for e in before + during]
        assert await live.quiet(again, 0.5) == []
        await again.close()

    asyncio.run(scenario())


async def _post_many(server: Server, headers, world, count: int) -> list[dict]:
    return [await live.post_entry(server, headers, world.patient_id, f"連続{i}") for i in range(count)]
