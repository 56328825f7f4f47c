"""timeline feed ordered by when each record was first posted; attachments carried by the entry itself

Revision ID: 0008b
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

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

    op.create_table('entry_attachment',
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('attachment_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachment.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entry.id'], ),
    sa.PrimaryKeyConstraint('entry_id', 'attachment_id')
    )


def downgrade() -> None:
    op.drop_table('entry_attachment')
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_entry_record_feed')
        batch_op.create_index('ix_timeline_entry_feed', ['patient_id', 'is_head', 'posted_at', 'id'],
                              unique=False)
