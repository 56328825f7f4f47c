"""The event outbox and the inbox: append events in the caller's transaction, store and list notifications.

This module is the store every domain may call (auth and patients included), so it imports no
clinical domain; who may see an event is decided at delivery (renkei.notify.delivery).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Text, cast, event, func, insert, literal, select, text
from sqlalchemy.orm import Session, SessionTransaction

from renkei.db.session import WRITES
from renkei.db.types import utcnow
from renkei.errors import NotFound
from renkei.notify.models import Audience, Notification, OutboxEvent
from renkei.notify.schemas import NotificationOut

# PostgreSQL channel the hubs LISTEN on; the payload is the event's sequence number only.
CHANNEL = "renkei"
# session.info key: the newest seq appended in this transaction (the after-commit hook wakes the hub).
APPENDED_KEY = "notify.appended"
# session.info key: events queued by `queue`, appended by the pre-commit hook (notify.hooks).
QUEUED_KEY = "notify.queued"
# Arbitrary constant naming the outbox's PostgreSQL advisory lock ("RENKOUTB").
_PG_LOCK_KEY = 0x52454E4B4F555442
_outbox_t = OutboxEvent.__table__  # type: ignore[attr-defined]
_NEXT_SEQ = func.coalesce(func.max(_outbox_t.c.seq), 0) + 1
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:key)").execution_options(**{WRITES: ()})
_CODE = re.compile(r"[a-z0-9_.:-]{1,64}")
_RESERVED = frozenset({"seq", "type", "patient_id", "urgent"})
MAX_REFS = 8


class Kind(StrEnum):
    entry_created = "entry.created"
    entry_amended = "entry.amended"
    entry_entered_in_error = "entry.entered_in_error"
    entry_acknowledged = "entry.acknowledged"
    acknowledgement_requested = "acknowledgement.requested"
    entry_urgent = "entry.urgent"  # inbox only: the live event is the entry's own, flagged urgent
    summary_changed = "summary.changed"  # emergency information or ACP
    consent_recorded = "consent.recorded"
    consent_withdrawn = "consent.withdrawn"
    team_member_added = "team.member_added"
    team_member_ended = "team.member_ended"
    break_glass = "break_glass"
    draft_conflict = "draft.conflict"
    sessions_ended = "sessions.ended"  # control


# Events after which earlier access decisions about the patient no longer hold.
ACCESS_CHANGES = frozenset({Kind.consent_recorded, Kind.consent_withdrawn, Kind.team_member_added,
                            Kind.team_member_ended, Kind.break_glass})


@dataclass(frozen=True)
class Event:
    """An outbox row as the hubs pass it around (immutable, shared between threads)."""

    seq: int
    kind: str
    audience: str
    patient_id: uuid.UUID | None
    user_id: uuid.UUID | None
    category: str | None
    urgent: bool
    refs: Mapping[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """What a client receives: sequence, type, patient and ids; content is fetched over the API."""
        body: dict[str, Any] = {"seq": self.seq, "type": self.kind,
                                "patient_id": str(self.patient_id) if self.patient_id else None}
        body.update(self.refs)
        body["urgent"] = self.urgent
        return json.dumps(body, separators=(",", ":"))


def _refs_json(refs: Mapping[str, object] | None) -> str:
    """Ids and codes only: anything else is a programming error, never silently stored."""
    refs = refs or {}
    if len(refs) > MAX_REFS:
        raise ValueError("too many event references")
    out: dict[str, str] = {}
    for key, value in refs.items():
        if not _CODE.fullmatch(key) or key in _RESERVED:
            raise ValueError(f"invalid event reference name {key!r}")
        if isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, str) and _CODE.fullmatch(value):
            out[key] = value
        else:
            raise ValueError(f"event reference {key!r} must be an id or a code")
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def _lock_outbox(session: Session) -> None:
    # PostgreSQL hands out numbers before commit, so two transactions could commit out of order and a
    # reader would skip the lower one for good. Holding a transaction-level advisory lock from the first
    # append until commit makes appends commit in seq order. SQLite needs nothing: BEGIN IMMEDIATE
    # already serialises every writing transaction.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_LOCK, {"key": _PG_LOCK_KEY})


def append(
    session: Session, *, kind: str, audience: Audience, patient_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None, category: str | None = None, urgent: bool = False,
    refs: Mapping[str, object] | None = None, created_at: datetime | None = None,
) -> int:
    """Append one event to the outbox in the caller's transaction; returns its seq."""
    values = {"kind": str(kind), "audience": audience.value, "patient_id": patient_id, "user_id": user_id,
              "category": category, "urgent": urgent, "refs": _refs_json(refs),
              "created_at": created_at or utcnow()}
    columns = [_outbox_t.c[name] for name in values]
    _lock_outbox(session)
    # Numbering (max + 1) and inserting in one statement: a round trip less on every post.
    appended = insert(_outbox_t).from_select(
        [_outbox_t.c.seq, *columns],
        select(_NEXT_SEQ, *[literal(v, type_=c.type) for c, v in zip(columns, values.values(), strict=True)]),
    ).returning(_outbox_t.c.seq)
    if session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: the other processes hear of the event when, and only if, it commits.
        rows = appended.cte("appended")
        notified = select(rows.c.seq, func.pg_notify(CHANNEL, cast(rows.c.seq, Text)))
        seq = int(session.execute(notified.execution_options(**{WRITES: (_outbox_t.name,)})).one()[0])
    else:
        seq = int(session.execute(appended).scalar_one())
    session.info[APPENDED_KEY] = seq
    return seq


def queue(
    session: Session, *, kind: str, audience: Audience, patient_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None, category: str | None = None, urgent: bool = False,
    refs: Mapping[str, object] | None = None,
) -> None:
    """Append one event when the caller's transaction is about to commit, in the order queued."""
    # On PostgreSQL an append holds the outbox lock until commit: queued, a request takes it for its last
    # statements only, not while it builds its response, so concurrent writers wait for each other less.
    _refs_json(refs)  # a bad reference fails here, where it was made, not at commit
    # Tagged with the (sub)transaction it belongs to: rolling that back drops it (_drop_rolled_back).
    within = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(QUEUED_KEY, []).append((within, {
        "kind": kind, "audience": audience, "patient_id": patient_id, "user_id": user_id,
        "category": category, "urgent": urgent, "refs": refs, "created_at": utcnow()}))


def append_queued(session: Session) -> None:
    """Append the events queued in this transaction (the app's pre-commit hook calls it)."""
    for _, queued in session.info.pop(QUEUED_KEY, []):
        append(session, **queued)


@event.listens_for(Session, "before_commit")
def _append_left_over(session: Session) -> None:
    # The app's pre-commit hook has appended the queue before the audit rows (the lock order). A transaction
    # committed without it (a script, a test helper) must not lose its events: they are appended here.
    if session.info.get(QUEUED_KEY) and not session.in_nested_transaction():
        append_queued(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_with_transaction(session: Session, transaction: SessionTransaction) -> None:
    # Committed, the queue was appended; rolled back or closed, what it held never happened.
    if transaction.parent is None:
        session.info.pop(QUEUED_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    queued = session.info.get(QUEUED_KEY)
    if not queued:
        return

    def rolled_back(within: SessionTransaction | None) -> bool:
        while within is not None:
            if within is previous:
                return True
            within = within.parent
        return False

    session.info[QUEUED_KEY] = [(within, e) for within, e in queued if not rolled_back(within)]


def sessions_ended(
    session: Session, *, session_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> None:
    """Tell every hub that sign-ins ended (one, or all of a user's but `keep`): close their sockets."""
    refs: dict[str, object] = {}
    if session_id is not None:
        refs["session_id"] = session_id
    if keep is not None:
        refs["keep"] = keep
    append(session, kind=Kind.sessions_ended, audience=Audience.control, user_id=user_id, refs=refs)


def team_changed(
    session: Session, *, kind: Kind, patient_id: uuid.UUID, membership_id: uuid.UUID, member_id: uuid.UUID,
    actor_id: uuid.UUID,
) -> None:
    """A care-team membership began or ended: the team hears it live, the member finds it in the inbox."""
    refs = {"membership_id": membership_id, "user_id": member_id}
    append(session, kind=kind, audience=Audience.team, patient_id=patient_id, refs=refs)
    if member_id != actor_id:
        notify_users(session, user_ids=[member_id], kind=kind, patient_id=patient_id,
                     refs={"membership_id": membership_id})


# -- reading the outbox (the hubs) --------------------------------------------------------------


def _event(row: OutboxEvent) -> Event:
    return Event(seq=row.seq, kind=row.kind, audience=row.audience, patient_id=row.patient_id,
                 user_id=row.user_id, category=row.category, urgent=row.urgent, refs=json.loads(row.refs))


def head(session: Session) -> int:
    """The newest committed seq (0 when the outbox is empty)."""
    return session.scalar(select(func.max(OutboxEvent.seq))) or 0


def events_after(session: Session, after: int, limit: int) -> list[Event]:
    """Committed events with seq > `after`, oldest first."""
    rows = session.scalars(select(OutboxEvent).where(OutboxEvent.seq > after).order_by(OutboxEvent.seq)
                           .limit(limit))
    return [_event(row) for row in rows]


def events(session: Session, query: Any) -> list[Event]:
    """Run a narrowed outbox query (built by the delivery module) and return its events."""
    return [_event(row) for row in session.scalars(query)]


# -- the inbox -----------------------------------------------------------------------------------


def notify_users(
    session: Session, *, user_ids: Iterable[uuid.UUID], kind: str, patient_id: uuid.UUID | None = None,
    refs: Mapping[str, object] | None = None, urgent: bool = False,
) -> list[uuid.UUID]:
    """Put one notification in each user's inbox (each user once); ids and codes only, never PHI."""
    body = json.dumps({k: str(v) for k, v in (refs or {}).items()}, sort_keys=True, separators=(",", ":"))
    ids = []
    for user_id in dict.fromkeys(user_ids):
        row = Notification(user_id=user_id, kind=str(kind), patient_id=patient_id, refs=body, urgent=urgent)
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
