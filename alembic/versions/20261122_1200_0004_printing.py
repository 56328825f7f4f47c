"""printing: print jobs named by the QR code on every printed form, and paper intake

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel

import renkei.db.types
from alembic import op


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('print_job',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('form_id', sa.String(length=40), nullable=False),
    sa.Column('form_version', sa.Integer(), nullable=False),
    sa.Column('output', sa.String(length=10), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.Column('printed_by', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('printed_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['printed_by'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('print_job', schema=None) as batch_op:
        batch_op.create_index('ix_print_job_patient_printed', ['patient_id', 'printed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_print_job_printed_by'), ['printed_by'], unique=False)

    op.create_table('paper_intake',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('print_job_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('form_id', sa.String(length=40), nullable=False),
    sa.Column('form_version', sa.Integer(), nullable=False),
    sa.Column('attachment_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('uploaded_by', sa.Uuid(), nullable=False),
    sa.Column('uploaded_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('transcribed_entry_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['print_job_id'], ['print_job.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.create_index('ix_paper_intake_patient_status', ['patient_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_paper_intake_print_job_id'), ['print_job_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('paper_intake', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paper_intake_print_job_id'))
        batch_op.drop_index('ix_paper_intake_patient_status')

    op.drop_table('paper_intake')
    with op.batch_alter_table('print_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_job_printed_by'))
        batch_op.drop_index('ix_print_job_patient_printed')

    op.drop_table('print_job')
