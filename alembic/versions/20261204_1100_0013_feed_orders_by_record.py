"""the timeline feed breaks ties of first posting by record id, not by version id

The feed is ordered by when each record was first posted, newest first, and a page cursor names the last
record shown. Ties were broken by the row id of the record's current version, which an amendment replaces
with a new random id: a record amended between two page loads could move across the cursor and be shown
twice or not at all. The record id never changes, so it now breaks the tie, and the feed index ends in it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 11:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_timeline_entry_record_feed", table_name="timeline_entry")
    op.create_index("ix_timeline_entry_feed_by_record", "timeline_entry",
                    ["patient_id", "is_head", "record_posted_at", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_timeline_entry_feed_by_record", table_name="timeline_entry")
    op.create_index("ix_timeline_entry_record_feed", "timeline_entry",
                    ["patient_id", "is_head", "record_posted_at", "id"])
