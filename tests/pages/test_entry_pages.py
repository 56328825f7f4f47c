"""The entry pages (cookie sessions): the timeline row of an amended record, the entry form's widgets."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from renkei.timeline.models import TimelineEntry
from tests.timeline.support import amend, posted

JST = ZoneInfo("Asia/Tokyo")


def _row(html: str, entry_id: str) -> str:
    row = html[html.index(f'data-entry-id="{entry_id}"'):]
    return row[: row.index("</li>")]


def test_an_amended_record_shows_when_it_was_first_posted_and_that_it_was_amended(browse, db, world, as_user):
    nurse = as_user(world.nurse)
    note = posted(browse(world.nurse), nurse, world.patient_id, "message", {"text": "6月1日の連絡"})
    row = db.get(TimelineEntry, uuid.UUID(note["id"]))
    row.posted_at = row.record_posted_at = datetime(2025, 6, 1, 9, 0, tzinfo=JST)
    db.flush()
    corrected = amend(browse(world.nurse), nurse, note, {"text": "6月1日の連絡（訂正）"}, "誤字").json()
    html = browse(world.physician).get(f"/patients/{world.patient_id}/timeline").text
    shown = _row(html, corrected["id"])
    assert "2025-06-01 09:00" in shown and "訂正あり（第2版）" in shown
    amended_at = datetime.fromisoformat(corrected["posted_at"].replace("Z", "+00:00")).astimezone(JST)
    assert "訂正あり <time" in shown and amended_at.strftime("%Y-%m-%d %H:%M") in shown
