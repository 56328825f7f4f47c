"""Merge the consent/audit, timeline and printing branches; link printing rows to timeline rows.

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-11-22 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None

# The printing branch was written before the timeline tables existed, so its references to them are added here.
_FKS = [
    ("print_job", "fk_print_job_entry_id_timeline_entry", "timeline_entry", "entry_id"),
    ("paper_intake", "fk_paper_intake_attachment_id_attachment", "attachment", "attachment_id"),
    ("paper_intake", "fk_paper_intake_transcribed_entry_id_timeline_entry", "timeline_entry", "transcribed_entry_id"),
]


def upgrade() -> None:
    for table, name, referred, column in _FKS:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(name, referred, [column], ["id"])


def downgrade() -> None:
    for table, name, _referred, _column in reversed(_FKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
