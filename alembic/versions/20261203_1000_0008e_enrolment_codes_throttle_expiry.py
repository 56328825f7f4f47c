"""two-factor enrolment codes handed over by an administrator; expiring stale sign-in throttle counters

Revision ID: 0008e
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

import renkei.db.types
from alembic import op


revision = '0008e'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_enrolment_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_enrolment_expires_at', renkei.db.types.UTCDateTime(),
                                      nullable=True))
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_window_start'))
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('totp_enrolment_expires_at')
        batch_op.drop_column('totp_enrolment_digest')
