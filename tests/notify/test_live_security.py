"""The websocket's security checklist against a real server: Origin allow-list before the handshake, no
token in any URL (a single-use ticket as the first message), timeouts, logout and account disable closing
sockets at once, and bounds on connections per user and message size.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from renkei.db.types import utcnow
from renkei.notify.models import WsTicket
from tests.notify import live
from tests.notify.live import Deployment, Server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:8000.evil.example", None])
def test_a_foreign_or_missing_origin_is_refused_before_the_handshake(server: Server, origin):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws, origin=origin)  # type: ignore[arg-type]
        return refused.value.response.status_code

    assert asyncio.run(scenario()) == 403


def test_a_ticket_opens_one_socket_only(server: Server, deployment: Deployment):
    headers = deployment.as_user(deployment.world.nurse)

    async def scenario():
        value = await live.ticket(server.http, headers)
        first = await connect(server.ws, origin=live.ORIGIN)
        await first.send(json.dumps({"type": "auth", "ticket": value}))
        await live.until_ready(first)
        second = await connect(server.ws, origin=live.ORIGIN)
        await second.send(json.dumps({"type": "auth", "ticket": value}))
        code = await live.close_code(second)
        await first.close()
        return code

    assert asyncio.run(scenario()) == 4401


def test_an_expired_ticket_is_refused(server: Server, deployment: Deployment):
    headers = deployment.as_user(deployment.world.nurse)

    async def scenario():
        value = await live.ticket(server.http, headers)
        with live.committing(deployment.settings) as session:
            session.execute(update(WsTicket).where(WsTicket.user_id == deployment.world.nurse.id)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        ws = await connect(server.ws, origin=live.ORIGIN)
        await ws.send(json.dumps({"type": "auth", "ticket": value}))
        return await live.close_code(ws)

    assert asyncio.run(scenario()) == 4401


@pytest.mark.parametrize("first", ["not json", json.dumps({"type": "hello"}),
                                   json.dumps({"type": "auth", "ticket": "x" * 40, "token": "abc"})])
def test_anything_but_an_auth_message_first_closes_the_socket(server: Server, first):
    async def scenario():
        ws = await connect(server.ws, origin=live.ORIGIN)
        await ws.send(first)
        return await live.close_code(ws)

    assert asyncio.run(scenario()) == 4400


def test_a_socket_that_never_authenticates_is_closed_after_the_timeout(server: Server):
    async def scenario():
        ws = await connect(server.ws, origin=live.ORIGIN)
        loop = asyncio.get_running_loop()
        start = loop.time()
        code = await live.close_code(ws, timeout=10)
        return code, loop.time() - start

    code, waited = asyncio.run(scenario())
    assert code == 4408 and 0.5 <= waited < 5  # the test server's limit is 1 s (production: 5 s)


def test_logout_closes_the_socket_at_once(server: Server, deployment: Deployment):
    headers = deployment.as_user(deployment.world.nurse)

    async def scenario():
        ws = await live.open_socket(server, headers)
        await live.until_ready(ws)
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        return await live.timed(live.close_code(ws, timeout=15))

    code, took = asyncio.run(scenario())
    assert code == 4403 and took < 5  # at once, not at the next session sweep (60 s here)


def test_disabling_an_account_closes_its_sockets_at_once_and_spares_others(server: Server,
                                                                          deployment: Deployment):
    world = deployment.world
    nurse, physician = deployment.as_user(world.nurse), deployment.as_user(world.physician)
    admin = deployment.as_user(world.nursing_admin)

    async def scenario():
        doomed = await live.open_socket(server, nurse)
        spared = await live.open_socket(server, physician)
        await live.until_ready(doomed)
        await live.until_ready(spared)
        async with httpx.AsyncClient(base_url=server.http) as http:
            r = await http.post(f"/api/v1/staff/{world.nurse.id}/disable", headers=admin)
            assert r.status_code == 200, r.text
        code, took = await live.timed(live.close_code(doomed, timeout=15))
        entry = await live.post_entry(server, physician, world.patient_id)
        assert (await live.next_event(spared))["entry_id"] == entry["id"]
        await spared.close()
        return code, took

    code, took = asyncio.run(scenario())
    assert code == 4403 and took < 5  # at once, not at the next session sweep (60 s here)


def test_the_oldest_socket_goes_when_a_user_opens_too_many(server: Server, deployment: Deployment):
    headers = deployment.as_user(deployment.world.physician)  # the test server allows two per user

    async def scenario():
        sockets = []
        for _ in range(3):
            ws = await live.open_socket(server, headers)
            await live.until_ready(ws)
            sockets.append(ws)
        code = await live.close_code(sockets[0], timeout=15)
        entry = await live.post_entry(server, deployment.as_user(deployment.world.nurse),
                                      deployment.world.patient_id)
        for ws in sockets[1:]:
            assert (await live.next_event(ws))["entry_id"] == entry["id"]
            await ws.close()
        return code

    assert asyncio.run(scenario()) == 4409


def test_an_oversized_message_closes_the_socket(server: Server, deployment: Deployment):
    headers = deployment.as_user(deployment.world.nurse)

    async def scenario():
        ws = await live.open_socket(server, headers)
        await live.until_ready(ws)
        await ws.send("x" * 10_000)
        return await live.close_code(ws, timeout=15)

    assert asyncio.run(scenario()) == 1009


def test_an_oversized_first_message_is_refused_without_being_parsed(server: Server):
    async def scenario():
        ws = await connect(server.ws, origin=live.ORIGIN)
        await ws.send(json.dumps({"type": "auth", "ticket": "t" * 100_000}))
        return await live.close_code(ws, timeout=15)

    assert asyncio.run(scenario()) == 1009
