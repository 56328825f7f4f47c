"""timeline feed ordered by when each record was first posted

Revision ID: 0008b
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from alembic import op


revision = '0008b'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_entry_feed')
        batch_op.create_index('ix_timeline_entry_record_feed',
                              ['patient_id', 'is_head', 'record_posted_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_entry_record_feed')
        batch_op.create_index('ix_timeline_entry_feed', ['patient_id', 'is_head', 'posted_at', 'id'],
                              unique=False)
