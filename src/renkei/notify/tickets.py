"""Websocket tickets: a browser cannot send an Authorization header on a websocket, and no token may
appear in a URL, so a signed-in client trades its session for a short single-use ticket over POST and
sends it as the socket's first message. Only the ticket's hash is stored, so any process can redeem it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from renkei.auth import service as auth_service
from renkei.auth.models import AuthSession
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.db.types import utcnow
from renkei.directory.models import User
from renkei.errors import TooManyAttempts
from renkei.notify.models import WsTicket
from renkei.notify.schemas import TicketOut

TICKET_BYTES = 32  # 256 random bits
MAX_OPEN_TICKETS = 10


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue(session: Session, *, settings: Settings, actor: Actor) -> TicketOut:
    """A single-use ticket bound to my user and session, valid `ws_ticket_seconds` (at most 30 s)."""
    now = utcnow()
    session.execute(delete(WsTicket).where(WsTicket.expires_at < now - timedelta(minutes=5)))
    unused = session.scalar(select(func.count()).select_from(WsTicket).where(
        WsTicket.user_id == actor.user_id, WsTicket.used_at.is_(None), WsTicket.expires_at > now))
    if (unused or 0) >= MAX_OPEN_TICKETS:
        raise TooManyAttempts("Too many unused websocket tickets",
                              headers={"Retry-After": str(settings.ws_ticket_seconds)})
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    session.add(WsTicket(token_hash=_digest(ticket), user_id=actor.user_id, session_id=actor.session_id,
                         created_at=now, expires_at=now + timedelta(seconds=settings.ws_ticket_seconds)))
    session.flush()
    return TicketOut(ticket=ticket, expires_in=settings.ws_ticket_seconds)


def redeem(session: Session, *, settings: Settings, ticket: str) -> Actor | None:
    """Spend a ticket once (in any process) and resolve its session's actor; None if refused."""
    now = utcnow()
    digest = _digest(ticket)
    spent = session.execute(
        update(WsTicket)
        .where(WsTicket.token_hash == digest, WsTicket.used_at.is_(None), WsTicket.expires_at > now)
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.get(WsTicket, digest)
    assert row is not None
    actor = session_actor(session, settings=settings, session_id=row.session_id)
    return actor if actor is not None and actor.user_id == row.user_id else None


def _live_sessions(settings: Settings):  # type: ignore[no-untyped-def]
    now = utcnow()
    return (
        select(AuthSession, User).join(User, User.id == AuthSession.user_id).where(
            AuthSession.revoked_at.is_(None), AuthSession.expires_at > now, User.active,
            # Shared tablets: a browser session idle past the limit is over, even with a socket open.
            or_(AuthSession.kind != "web",
                AuthSession.last_seen_at > now - timedelta(minutes=settings.session_idle_minutes)),
        )
    )


def session_actor(session: Session, *, settings: Settings, session_id: uuid.UUID) -> Actor | None:
    """The actor of a sign-in that is still valid (not revoked, expired, idle, or of a disabled user)."""
    found = session.execute(_live_sessions(settings).where(AuthSession.id == session_id)).first()
    if found is None:
        return None
    auth, user = found
    if auth_service.totp_required(settings, user) and not user.totp_enabled:
        return None
    return Actor(user_id=user.id, organisation_id=user.organisation_id, profession=user.profession,
                 role=user.role, name=user.name, session_id=auth.id, session_kind=auth.kind)


def live_session_ids(
    session: Session, *, settings: Settings, session_ids: Iterable[uuid.UUID],
) -> set[uuid.UUID]:
    """Which of these sign-ins are still valid; the hub closes the sockets of the others."""
    ids = list(dict.fromkeys(session_ids))
    alive: set[uuid.UUID] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        alive |= set(session.scalars(_live_sessions(settings).with_only_columns(AuthSession.id)
                                     .where(AuthSession.id.in_(chunk))))
    return alive
