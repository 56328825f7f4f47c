"""The inbox: store notifications for users; list and mark them read. Live delivery comes later."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.db.types import utcnow
from renkei.errors import NotFound
from renkei.notify.models import Notification
from renkei.notify.schemas import NotificationOut


def notify_users(
    session: Session, *, user_ids: Iterable[uuid.UUID], kind: str, patient_id: uuid.UUID | None = None,
    refs: Mapping[str, object] | None = None, urgent: bool = False,
) -> list[uuid.UUID]:
    """Put one notification in each user's inbox (each user once); ids and codes only, never PHI."""
    body = json.dumps({k: str(v) for k, v in (refs or {}).items()}, sort_keys=True, separators=(",", ":"))
    ids = []
    for user_id in dict.fromkeys(user_ids):
        row = Notification(user_id=user_id, kind=kind, patient_id=patient_id, refs=body, urgent=urgent)
        session.add(row)
        ids.append(row.id)
    session.flush()
    return ids


def _out(row: Notification) -> NotificationOut:
    return NotificationOut(id=row.id, kind=row.kind, patient_id=row.patient_id, refs=json.loads(row.refs),
                           urgent=row.urgent, created_at=row.created_at, read_at=row.read_at)


def inbox(
    session: Session, *, user_id: uuid.UUID, unread_only: bool = False, limit: int = 100,
) -> list[NotificationOut]:
    """My notifications: unread first, then urgent first, newest first."""
    q = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    q = q.order_by(Notification.read_at.is_not(None), Notification.urgent.desc(),
                   Notification.created_at.desc(), Notification.id)
    return [_out(row) for row in session.scalars(q.limit(limit))]


def mark_read(session: Session, *, user_id: uuid.UUID, notification_id: uuid.UUID) -> NotificationOut:
    """Mark one of my notifications read (idempotent); someone else's is 404."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotFound()
    if row.read_at is None:
        row.read_at = utcnow()
        session.flush()
    return _out(row)
