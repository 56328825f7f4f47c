"""The pre-commit hook for changes made by domains that must not depend on notify (auth, patients).

They leave a note in `session.info`; this hook, run inside the request's transaction just before it
commits (app.py), appends the events. A note left by work that was rolled back is dropped: the hook
checks the database still shows the change.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from renkei.auth import service as auth_service
from renkei.auth.models import AuthSession
from renkei.notify import service
from renkei.notify.service import Kind
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership


def precommit(session: Session) -> None:
    """Append the events queued in this transaction, then those for sign-ins ended and care-team changes."""
    service.append_queued(session)
    for ended in session.info.pop(auth_service.ENDED_SESSIONS_KEY, []):
        session_id = ended.get("session_id")
        if session_id is not None:
            row = session.get(AuthSession, session_id)
            if row is None or row.revoked_at is None:
                continue
        service.sessions_ended(session, session_id=session_id, user_id=ended.get("user_id"),
                               keep=ended.get("keep"))
    for kind, membership_id, actor_id in session.info.pop(patient_service.TEAM_CHANGES_KEY, []):
        m = session.get(CareTeamMembership, membership_id)
        if m is None or (kind == Kind.team_member_ended and m.ended_at is None):
            continue
        service.team_changed(session, kind=Kind(kind), patient_id=m.patient_id, membership_id=m.id,
                             member_id=m.user_id, actor_id=actor_id)
