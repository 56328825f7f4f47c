"""The websocket protocol of `/ws`.

1. The Origin must be on the allow-list, checked before the handshake is accepted (else HTTP 403).
2. The first message, within `ws_auth_timeout_seconds`, is `{"type":"auth","ticket":…,"resume_after":<seq>}`.
3. The socket subscribes, replays every missed event the user may see (seq > resume_after), sends
   `{"type":"ready","seq":n}`, then streams live events `{"seq","type","patient_id",…ids,"urgent"}`
   and heartbeats `{"type":"ping","seq":n}`; `seq` in ready/ping is the cursor to resume from.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from renkei.auth.dependencies import origin_allowed
from renkei.config import Settings
from renkei.notify import delivery, service, tickets
from renkei.notify.hub import (
    CLOSE_AUTH_TIMEOUT,
    CLOSE_GONE,
    CLOSE_INVALID,
    CLOSE_SESSION_ENDED,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORISED,
    Connection,
    Hub,
)
from renkei.notify.schemas import SocketAuthIn


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def _receive_text(websocket: WebSocket, limit: int) -> str:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data: Any = message.get("text")
    if data is None:
        data = message.get("bytes") or b""
    if len(data) > limit:
        raise _Refused(CLOSE_TOO_BIG, "message_too_big")
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _parse_auth(text: str) -> SocketAuthIn:
    try:
        return SocketAuthIn.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise _Refused(CLOSE_INVALID, "auth_expected") from exc


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED or code == CLOSE_GONE:
        return
    try:
        async with asyncio.timeout(5.0):
            await websocket.close(code=code, reason=reason)
    except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
        pass


async def serve(websocket: WebSocket, hub: Hub) -> None:
    """Run one websocket from handshake to close."""
    settings = hub.settings
    origin = websocket.headers.get("origin")
    if origin is None or not origin_allowed(settings, origin):
        # Closing before accept makes the server answer the handshake with 403: the socket never opens.
        await websocket.close(code=1008)
        return
    await websocket.accept()
    if not hub.ready or hub.full():
        await _close(websocket, CLOSE_TRY_AGAIN, "try_again")
        return
    try:
        async with asyncio.timeout(settings.ws_auth_timeout_seconds):
            first = await _receive_text(websocket, settings.ws_max_message_bytes)
        hello = _parse_auth(first)
        actor = await hub.write(tickets.redeem, settings=settings, ticket=hello.ticket)
        if actor is None:
            raise _Refused(CLOSE_UNAUTHORISED, "invalid_ticket")
    except TimeoutError:
        await _close(websocket, CLOSE_AUTH_TIMEOUT, "auth_timeout")
        return
    except _Refused as refused:
        await _close(websocket, refused.code, refused.reason)
        return
    except WebSocketDisconnect:
        return
    conn = Connection(websocket, actor, queue_size=settings.ws_send_queue)
    hub.register(conn)
    receiver = asyncio.create_task(_receive_forever(conn, settings.ws_max_message_bytes))
    try:
        await _stream(hub, conn, hello.resume_after)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if conn.close_code is None or task is None:
            raise
        # Cancelled by `abort` (logout, slow consumer, replaced...): uncancel so that closing can await.
        task.uncancel()
    except (WebSocketDisconnect, RuntimeError, OSError):
        conn.close_code = conn.close_code or CLOSE_GONE
    finally:
        hub.unregister(conn)
        receiver.cancel()
    await _close(websocket, conn.close_code or CLOSE_GONE, conn.close_reason)


async def _receive_forever(conn: Connection, limit: int) -> None:
    """Read (and ignore) what the client sends, so that a disconnect or an oversized message is noticed."""
    try:
        while True:
            await _receive_text(conn.websocket, limit)
    except _Refused as refused:
        conn.abort(refused.code, refused.reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        conn.abort(CLOSE_GONE, "")


async def _stream(hub: Hub, conn: Connection, resume_after: int | None) -> None:
    settings = hub.settings
    still_signed_in, head = await hub.read(_session_and_head, settings=settings, session_id=conn.session_id)
    if not still_signed_in:
        # Not `conn.abort`: that cancels this very task, and the pending cancellation would hit `_close`.
        if conn.close_code is None:
            conn.close_code, conn.close_reason = CLOSE_SESSION_ENDED, "session_ended"
        return
    # No cursor: start from now. A cursor beyond the head (another database, a restore) is pulled back so
    # that the events that will take those numbers are not skipped.
    cursor = head if resume_after is None else min(resume_after, head)
    decisions = delivery.Decisions(ttl=3600.0)
    while True:
        page = await hub.read(delivery.replay_page, conn.actor, decisions, after=cursor,
                              limit=settings.ws_replay_page)
        for event in page.events:
            await conn.websocket.send_text(event.message())
        cursor = page.upto
        conn.sent_seq = cursor
        if page.more:
            continue
        if hub.go_live(conn, cursor):
            break
        await hub.settled()
    await conn.websocket.send_text(json.dumps({"type": "ready", "seq": cursor}))
    while True:
        seq, text = await conn.queue.get()
        if text is None:
            conn.sent_seq = max(conn.sent_seq, seq)
            await conn.websocket.send_text(json.dumps({"type": "ping", "seq": conn.sent_seq}))
        elif seq > conn.sent_seq:
            await conn.websocket.send_text(text)
            conn.sent_seq = seq


def _session_and_head(session: Session, *, settings: Settings, session_id: uuid.UUID) -> tuple[bool, int]:
    """Whether the sign-in still holds now that the socket is subscribed, and where the outbox stands."""
    signed_in = tickets.session_actor(session, settings=settings, session_id=session_id) is not None
    return signed_in, service.head(session)
