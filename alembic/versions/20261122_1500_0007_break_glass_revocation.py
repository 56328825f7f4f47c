"""break-the-glass revocation: who ended a grant early, and when

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

import renkei.db.types
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', renkei.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_break_glass_grant_revoked_by', 'user_account', ['revoked_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.drop_constraint('fk_break_glass_grant_revoked_by', type_='foreignkey')
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('revoked_at')
