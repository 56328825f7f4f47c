"""Who may receive an event, decided when it is sent: through `renkei.access`, never at append time.

An event about a patient reaches a member only if `access.can` allows reading what it points at
(the entry's category, or the registration for team and consent events) at that moment: a consent
withdrawn or a membership ended after the event stops its delivery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.models import BreakGlassGrant
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.db.types import utcnow
from renkei.directory.models import User
from renkei.notify import service
from renkei.notify.models import Audience, OutboxEvent
from renkei.notify.service import Event
from renkei.patients.models import CareTeamMembership

# Decisions about a user who is not signed in on a socket (inbox recipients) carry no session.
NO_SESSION = uuid.UUID(int=0)


def member_actor(user: User) -> Actor:
    """The actor access decides for when a member is not the one making the request."""
    return Actor(user_id=user.id, organisation_id=user.organisation_id, profession=user.profession,
                 role=user.role, name=user.name, session_id=NO_SESSION, session_kind="event")


def _action(event: Event) -> Action:
    return Action.read_clinical if event.category else Action.read_registration


def addressed_to(event: Event, user_id: uuid.UUID) -> bool:
    """Whether the event is for this user at all, before any access decision."""
    if event.audience == Audience.control or (event.user_id is not None and event.user_id != user_id):
        return False
    return event.audience == Audience.user or event.patient_id is not None


# A break-the-glass grant ends by the clock, with no event: answers that rest on one are kept only briefly.
GRANT_TTL = 5.0


class Decisions:
    """`access.can` answers per (user, patient, category), reused while fanning out.

    Events that change access (consent, team, break-the-glass) clear the patient's answers before
    anything after them is delivered; the time limit bounds how long a change that comes with no event
    (a consent's end date or a membership's start date passing, a grant expiring) can go unnoticed.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._answers: dict[uuid.UUID, dict[tuple[uuid.UUID, str | None], tuple[bool, float]]] = {}
        self._teams: dict[uuid.UUID, tuple[frozenset[uuid.UUID], float]] = {}

    def forget_changed(self, events: Iterable[Event]) -> None:
        """Drop what is known about patients whose access these events change."""
        for event in events:
            if event.kind in service.ACCESS_CHANGES and event.patient_id is not None:
                self._answers.pop(event.patient_id, None)
                self._teams.pop(event.patient_id, None)

    def allows(self, session: Session, actor: Actor, event: Event) -> bool:
        if not addressed_to(event, actor.user_id):
            return False
        if event.audience == Audience.user:
            return True
        assert event.patient_id is not None
        now = time.monotonic()
        answers = self._answers.setdefault(event.patient_id, {})
        key = (actor.user_id, event.category)
        cached = answers.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        decision = access.can(session, actor, _action(event), event.patient_id, category=event.category)
        answers[key] = (decision.allowed, now + (min(self.ttl, GRANT_TTL) if decision.grant_id else self.ttl))
        return decision.allowed

    def candidates(self, session: Session, patient_id: uuid.UUID) -> frozenset[uuid.UUID]:
        """Users who could possibly see the patient: active members and holders of a live grant."""
        now = time.monotonic()
        cached = self._teams.get(patient_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        members = session.scalars(select(CareTeamMembership.user_id).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None)))
        holders = session.scalars(select(BreakGlassGrant.user_id).where(
            BreakGlassGrant.patient_id == patient_id, BreakGlassGrant.expires_at > utcnow()))
        users = frozenset([*members, *holders])
        self._teams[patient_id] = (users, now + self.ttl)
        return users


def plan(
    session: Session, decisions: Decisions, events: Sequence[Event], actors: dict[uuid.UUID, Actor],
) -> list[tuple[Event, list[uuid.UUID]]]:
    """For each event, the connected users (keys of `actors`) who may receive it now."""
    decisions.forget_changed(events)
    out = []
    for event in events:
        if event.audience == Audience.control:
            continue
        if event.audience == Audience.user:
            users = [event.user_id] if event.user_id in actors else []
        elif event.patient_id is None:
            users = []
        else:
            possible = decisions.candidates(session, event.patient_id)
            if event.user_id is not None:
                possible = possible & {event.user_id}
            users = [uid for uid in possible if uid in actors
                     and decisions.allows(session, actors[uid], event)]
        if users:
            out.append((event, users))
    return out


def fetch_and_plan(
    session: Session, decisions: Decisions, *, after: int, limit: int, actors: dict[uuid.UUID, Actor],
) -> tuple[list[Event], list[tuple[Event, list[uuid.UUID]]]]:
    """The dispatcher's one trip to the database per batch: the next events, and who may receive each."""
    events = service.events_after(session, after, limit)
    return events, (plan(session, decisions, events, actors) if events and actors else [])


@dataclass(frozen=True)
class ReplayPage:
    events: list[Event]
    upto: int  # every event up to here has been considered
    more: bool


def replay_page(
    session: Session, actor: Actor, decisions: Decisions, *, after: int, limit: int,
) -> ReplayPage:
    """The next page of missed events this user may see, oldest first."""
    head = service.head(session)
    if head <= after:
        return ReplayPage([], after, False)
    grant = exists(select(BreakGlassGrant.id).where(
        BreakGlassGrant.user_id == actor.user_id, BreakGlassGrant.patient_id == OutboxEvent.patient_id,
        BreakGlassGrant.expires_at > utcnow()))
    mine = or_(
        and_(OutboxEvent.audience == Audience.user.value, OutboxEvent.user_id == actor.user_id),
        and_(OutboxEvent.audience == Audience.team.value,
             or_(OutboxEvent.user_id.is_(None), OutboxEvent.user_id == actor.user_id),
             or_(access.active_membership_clause(actor, OutboxEvent.patient_id), grant)),
    )
    # Scan by seq, not by the narrowed rows, so `upto` is exact even when nothing here is for this user.
    window = select(OutboxEvent.seq).where(OutboxEvent.seq > after, OutboxEvent.seq <= head) \
        .order_by(OutboxEvent.seq).limit(limit).subquery()
    last = session.scalar(select(func.max(window.c.seq))) or head
    more = last < head
    upto = last if more else head
    rows = service.events(session, select(OutboxEvent).where(
        OutboxEvent.seq > after, OutboxEvent.seq <= upto, mine).order_by(OutboxEvent.seq))
    decisions.forget_changed(rows)
    return ReplayPage([e for e in rows if decisions.allows(session, actor, e)], upto, more)


def inbox_members(
    session: Session, patient_id: uuid.UUID, *, category: str | None, exclude: Iterable[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """Active team members who may read the category now (the people an inbox row should reach)."""
    skip = set(exclude)
    users = session.scalars(
        select(User).join(CareTeamMembership, CareTeamMembership.user_id == User.id).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None), User.active,
        ).distinct()
    )
    action = Action.read_clinical if category else Action.read_registration
    return [u.id for u in users if u.id not in skip
            and access.can(session, member_actor(u), action, patient_id, category=category).allowed]


def active_members(session: Session, patient_id: uuid.UUID) -> set[uuid.UUID]:
    """Users on the patient's team today (consent aside)."""
    return set(session.scalars(select(CareTeamMembership.user_id).where(
        CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None))))
