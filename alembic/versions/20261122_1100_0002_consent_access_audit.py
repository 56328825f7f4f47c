"""consent, break-the-glass, audit log, inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel

import renkei.db.types
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('occurred_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=True),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('organisation_id', sa.Uuid(), nullable=True),
    sa.Column('profession', sa.String(length=30), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=True),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('target_ids', sa.Text(), nullable=False),
    sa.Column('categories', sa.String(length=200), nullable=True),
    sa.Column('sheet_ids', sa.String(length=400), nullable=True),
    sa.Column('decision', sa.String(length=5), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('grant_id', sa.Uuid(), nullable=True),
    sa.Column('client_addr', sa.String(length=64), nullable=True),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_actor_seq', ['actor_user_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index('ix_audit_event_patient_seq', ['patient_id', 'seq'], unique=False)

    op.create_table('break_glass_grant',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('profession', sa.String(length=30), nullable=False),
    sa.Column('reason_code', sa.String(length=30), nullable=False),
    sa.Column('reason_ct', sa.LargeBinary(), nullable=False),
    sa.Column('granted_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('reviewed_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('reviewed_by', sa.Uuid(), nullable=True),
    sa.Column('disposition', sa.String(length=30), nullable=True),
    sa.Column('review_note_ct', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['reviewed_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_break_glass_grant_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_break_glass_org_reviewed', ['organisation_id', 'reviewed_at'], unique=False)
        batch_op.create_index('ix_break_glass_user_patient', ['user_id', 'patient_id', 'expires_at'], unique=False)

    op.create_table('consent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('given_by', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=30), nullable=False),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('excluded_categories', sa.String(length=200), nullable=False),
    sa.Column('obtained_on', sa.Date(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('details_ct', sa.LargeBinary(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_org_id', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('superseded_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('superseded_by', sa.Uuid(), nullable=True),
    sa.Column('withdrawn_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.Column('withdrawn_on', sa.Date(), nullable=True),
    sa.Column('withdrawn_by', sa.Uuid(), nullable=True),
    sa.Column('withdrawal_ct', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['recorded_org_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['superseded_by'], ['consent.id'], ),
    sa.ForeignKeyConstraint(['withdrawn_by'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'version', name='uq_consent_patient_version')
    )
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_patient_id'), ['patient_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('refs', sa.Text(), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('created_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.Column('read_at', renkei.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_user_read', ['user_id', 'read_at', 'created_at'], unique=False)

    op.create_table('consent_document',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data_ct', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.Uuid(), nullable=False),
    sa.Column('uploaded_at', renkei.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_document_consent_id'), ['consent_id'], unique=False)

    op.create_table('consent_organisation',
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('consent_id', 'organisation_id')
    )
    with op.batch_alter_table('consent_organisation', schema=None) as batch_op:
        batch_op.create_index('ix_consent_organisation_org', ['organisation_id'], unique=False)

    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table('consent_organisation', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_organisation_org')

    op.drop_table('consent_organisation')
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_document_consent_id'))

    op.drop_table('consent_document')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_read')

    op.drop_table('notification')
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_patient_id'))

    op.drop_table('consent')
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_break_glass_user_patient')
        batch_op.drop_index('ix_break_glass_org_reviewed')
        batch_op.drop_index(batch_op.f('ix_break_glass_grant_patient_id'))

    op.drop_table('break_glass_grant')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_patient_seq')
        batch_op.drop_index(batch_op.f('ix_audit_event_occurred_at'))
        batch_op.drop_index('ix_audit_event_actor_seq')

    op.drop_table('audit_event')


# Append-only audit log. A later batch migration that rebuilds audit_event on SQLite drops these
# triggers with the old table and must create them again.
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
)
_POSTGRES_TRIGGERS = (
    "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_event is append-only' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()",
)


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect)
    if statements is None:
        raise RuntimeError(f"no append-only triggers for the {dialect} dialect")
    for statement in statements:
        op.execute(statement)


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
