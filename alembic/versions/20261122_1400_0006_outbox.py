"""outbox: live notification events and websocket tickets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

import renkei.db.types
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_event',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('audience', sa.String(length=10), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('category', sa.String(length=20), nullable=True),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('refs', sa.Text(), nullable=False),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_event_patient_seq', ['patient_id', 'seq'], unique=False)
        batch_op.create_index('ix_outbox_event_user_seq', ['user_id', 'seq'], unique=False)

    op.create_table('ws_ticket',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('used_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['auth_session.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('ws_ticket', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ws_ticket_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ws_ticket', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ws_ticket_expires_at'))

    op.drop_table('ws_ticket')
    with op.batch_alter_table('outbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_event_user_seq')
        batch_op.drop_index('ix_outbox_event_patient_seq')

    op.drop_table('outbox_event')
