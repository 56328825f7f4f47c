"""paper entries: a filed paper form is a timeline entry, its transcription links to it; print jobs of
consent forms name the consent version they were printed for

Revision ID: 0008c
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op


revision = '0008c'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paper_intake_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('paper_attachment_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('transcribes_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_timeline_entry_paper_intake_id', ['paper_intake_id'], unique=True)
        batch_op.create_index('ix_timeline_entry_transcribes_id', ['transcribes_id'], unique=False)
        batch_op.create_foreign_key('fk_timeline_entry_paper_attachment_id_attachment', 'attachment',
                                    ['paper_attachment_id'], ['id'])
        batch_op.create_foreign_key('fk_timeline_entry_transcribes_id_timeline_entry', 'timeline_entry',
                                    ['transcribes_id'], ['id'])

    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_paper_intake_entry_id_timeline_entry', 'timeline_entry',
                                    ['entry_id'], ['id'])

    with op.batch_alter_table('print_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_print_job_consent_id_consent', 'consent', ['consent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('print_job', schema=None) as batch_op:
        batch_op.drop_constraint('fk_print_job_consent_id_consent', type_='foreignkey')
        batch_op.drop_column('consent_id')

    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.drop_constraint('fk_paper_intake_entry_id_timeline_entry', type_='foreignkey')
        batch_op.drop_column('entry_id')

    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_constraint('fk_timeline_entry_transcribes_id_timeline_entry', type_='foreignkey')
        batch_op.drop_constraint('fk_timeline_entry_paper_attachment_id_attachment', type_='foreignkey')
        batch_op.drop_index('ix_timeline_entry_transcribes_id')
        batch_op.drop_index('ix_timeline_entry_paper_intake_id')
        batch_op.drop_column('transcribes_id')
        batch_op.drop_column('paper_attachment_id')
        batch_op.drop_column('paper_intake_id')
