"""The break-the-glass grants a professional holds right now: every page shows them in a banner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access.models import BreakGlassGrant
from renkei.auth.service import Actor
from renkei.db.types import utcnow


@dataclass(frozen=True)
class ActiveGrant:
    """Ids and times only: the banner must not name a patient whose registration the holder cannot see."""

    id: uuid.UUID
    patient_id: uuid.UUID
    expires_at: datetime


def active_grants(session: Session, actor: Actor) -> list[ActiveGrant]:
    """My unexpired grants, soonest to expire first."""
    rows = session.scalars(
        select(BreakGlassGrant).where(BreakGlassGrant.user_id == actor.user_id,
                                      BreakGlassGrant.expires_at > utcnow())
        .order_by(BreakGlassGrant.expires_at)
    )
    return [ActiveGrant(g.id, g.patient_id, g.expires_at) for g in rows]


def banner_context(session: Session, actor: Actor) -> dict[str, Any]:
    """Page context provider (see renkei.web.pages): the grants for the persistent banner."""
    return {"active_grants": active_grants(session, actor)}
