"""The pre-commit hook that keeps paper intakes in step with their paper entries on the timeline.

The timeline (which knows nothing of printing) notes which paper intakes a transcription, an amendment or
an "entered in error" touched; this hook, run in the request's transaction just before it commits (app.py),
sets each intake's status and transcribed entry from what the timeline now shows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.db.locking import get_locked
from renkei.printing.models import IntakeStatus, PaperIntake
from renkei.timeline import paper
from renkei.timeline.models import EntryStatus, TimelineEntry


def precommit(session: Session) -> None:
    """Bring the noted paper intakes up to date (a note from rolled-back work finds nothing to change)."""
    for intake_id in sorted(session.info.pop(paper.CHANGED_KEY, set())):
        # Locked, and everything read as committed once the lock is granted: when a paper entry and its
        # transcription are changed at once (each marked entered in error, say), the second request to get
        # here sees the first one's work instead of writing back what it saw before it.
        row = get_locked(session, PaperIntake, intake_id)
        if row is None or row.entry_id is None:
            continue
        status = session.scalar(select(TimelineEntry.status).where(TimelineEntry.id == row.entry_id))
        if status is None:
            continue
        if status == EntryStatus.entered_in_error:
            row.status, row.transcribed_entry_id = IntakeStatus.withdrawn.value, None
            continue
        transcription = paper.live_transcription(session, row.entry_id)
        row.transcribed_entry_id = transcription
        status = IntakeStatus.transcribed if transcription else IntakeStatus.awaiting_transcription
        row.status = status.value
    session.flush()
