"""JSON API: my inbox."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from renkei.auth.dependencies import ActorDep
from renkei.db.session import SessionDep
from renkei.notify import service
from renkei.notify.schemas import NotificationOut

router = APIRouter(tags=["notifications"])


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
