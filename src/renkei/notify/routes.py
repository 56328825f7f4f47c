"""JSON API: my inbox and websocket tickets; the live websocket `/ws`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, status

from renkei.auth.dependencies import ActorDep, SettingsDep
from renkei.db.session import SessionDep
from renkei.notify import live, service, tickets
from renkei.notify.schemas import NotificationOut, TicketOut

router = APIRouter(tags=["notifications"])
ws_router = APIRouter()


@router.get("/notifications", response_model=list[NotificationOut], summary="My notifications")
def list_notifications(actor: ActorDep, session: SessionDep, unread: bool = False,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """Unread first, then newest first."""
    return service.inbox(session, user_id=actor.user_id, unread_only=unread, limit=limit)


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut,
             summary="Mark a notification read")
def mark_read(notification_id: uuid.UUID, actor: ActorDep, session: SessionDep):
    """Idempotent; 404 for notifications that are not mine."""
    return service.mark_read(session, user_id=actor.user_id, notification_id=notification_id)


@router.post("/ws-ticket", response_model=TicketOut, status_code=status.HTTP_201_CREATED,
             summary="A single-use ticket for the live websocket")
def ws_ticket(actor: ActorDep, session: SessionDep, settings: SettingsDep):
    """Send it as the first websocket message within 30 seconds; it works once."""
    return tickets.issue(session, settings=settings, actor=actor)


@ws_router.websocket("/ws")
async def live_events(websocket: WebSocket):
    """Live events: Origin checked before accept, a ticket first, replay from the cursor, then live."""
    await live.serve(websocket, websocket.app.state.hub)
