"""timeline: entries, recipients, read receipts, attachments, idempotency keys

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa

import renkei.db.types
from alembic import op


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('timeline_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.String(length=40), nullable=False),
    sa.Column('sheet_version', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.String(length=10), nullable=False),
    sa.Column('is_head', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('author_organisation_id', sa.Uuid(), nullable=False),
    sa.Column('author_profession', sa.String(length=30), nullable=False),
    sa.Column('payload_ct', sa.LargeBinary(), nullable=False),
    sa.Column('supersedes_id', sa.Uuid(), nullable=True),
    sa.Column('amendment_reason_ct', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('record_posted_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('posted_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('error_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('error_by', sa.Uuid(), nullable=True),
    sa.Column('error_reason_ct', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['author_organisation_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['error_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['supersedes_id'], ['timeline_entry.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id', 'version', name='uq_timeline_entry_record_version')
    )
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_timeline_entry_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_timeline_entry_feed', ['patient_id', 'is_head', 'posted_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_timeline_entry_record_id'), ['record_id'], unique=False)
        batch_op.create_index('ix_timeline_entry_sheet', ['patient_id', 'sheet_id', 'is_head', 'status'], unique=False)

    op.create_table('entry_recipient',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('acknowledged_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entry.id'], ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entry_recipient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_recipient_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entry_recipient_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entry_recipient_user_id'), ['user_id'], unique=False)

    op.create_table('entry_read',
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('read_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['timeline_entry.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('entry_id', 'user_id')
    )

    op.create_table('attachment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('uploaded_by', sa.Uuid(), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('filename_ct', sa.LargeBinary(), nullable=False),
    sa.Column('content_ct', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('sheet_id', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('linked_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_patient_id'), ['patient_id'], unique=False)

    op.create_table('idempotency_key',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_ct', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotency_key_user_key')
    )
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_key_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_key_expires_at'))

    op.drop_table('idempotency_key')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_patient_id'))

    op.drop_table('attachment')
    op.drop_table('entry_read')
    with op.batch_alter_table('entry_recipient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_recipient_user_id'))
        batch_op.drop_index(batch_op.f('ix_entry_recipient_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_entry_recipient_entry_id'))

    op.drop_table('entry_recipient')
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_entry_sheet')
        batch_op.drop_index(batch_op.f('ix_timeline_entry_record_id'))
        batch_op.drop_index('ix_timeline_entry_feed')
        batch_op.drop_index(batch_op.f('ix_timeline_entry_author_id'))

    op.drop_table('timeline_entry')
