"""The timeline's calls into the access decision point, in one place, with the entry ids for the audit row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action, Decision
from renkei.auth.service import Actor


def require(
    session: Session, actor: Actor, action: Action, patient_id: uuid.UUID, *, category: str | None,
    sheet_id: str | None = None, targets: Sequence[uuid.UUID] = (), current: bool = False,
) -> Decision:
    """Allow or raise 404, audited either way; `targets` are the entries or attachments concerned; `current`:
    the one entry read is the current emergency sheet or ACP (`views.current_emergency_ids`)."""
    return access.require(session, actor, action, patient_id, category=category, sheet_id=sheet_id,
                          targets=list(targets), current=current)
