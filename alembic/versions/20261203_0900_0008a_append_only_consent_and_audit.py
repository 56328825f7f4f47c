"""audit rows appended in sequence; consents never edited or deleted; the consent state a grant was made in

Revision ID: 0008a
Revises: 0007
Create Date: 2026-12-03 09:00:00

- audit_event: CHECK (seq > 0) and an insert trigger that accepts only seq = max(seq) + 1, so a row cannot be
  slipped in before the first one or into a gap without dropping the trigger (which `renkei audit verify`
  then still catches through the chain).
- consent, consent_organisation, consent_document: DELETE refused; UPDATE refused except consent's
  superseded_* and withdrawn_* columns going from NULL to a value (superseding and withdrawal).
- break_glass_grant.consent_state: why no consent was in force when the grant was made (e.g.
  consent_withdrawn), for the reviewers.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op


revision = '0008a'
down_revision = '0007'
branch_labels = None
depends_on = None

# Copied from 0002 (a migration must not read today's models): recreating audit_event on SQLite drops them.
_AUDIT_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
)
_AUDIT_SEQUENCE_SQLITE = (
    "CREATE TRIGGER audit_event_in_sequence BEFORE INSERT ON audit_event "
    "WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_event) "
    "BEGIN SELECT RAISE(ABORT, 'audit_event rows are appended in sequence'); END",
)
_AUDIT_SEQUENCE_POSTGRES = (
    "ALTER TABLE audit_event ADD CONSTRAINT ck_audit_event_seq_positive CHECK (seq > 0)",
    "CREATE FUNCTION audit_event_in_sequence() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_event) THEN "
    "RAISE EXCEPTION 'audit_event rows are appended in sequence' "
    "USING ERRCODE = 'integrity_constraint_violation'; "
    "END IF; RETURN NEW; END $$",
    "CREATE TRIGGER audit_event_in_sequence BEFORE INSERT ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_in_sequence()",
)

# Consent columns that are set once (NULL -> value) when a version is superseded or withdrawn; every
# other column never changes after the insert.
_ONCE = ("superseded_at", "superseded_by", "withdrawn_at", "withdrawn_on", "withdrawn_by", "withdrawal_ct")
_FIXED = ("id", "patient_id", "version", "given_by", "method", "scope", "excluded_categories", "obtained_on",
          "valid_from", "valid_until", "details_ct", "recorded_by", "recorded_org_id", "recorded_at")
_EDITED_SQLITE = " OR ".join(
    [f"NEW.{c} IS NOT OLD.{c}" for c in _FIXED]
    + [f"(OLD.{c} IS NOT NULL AND NEW.{c} IS NOT OLD.{c})" for c in _ONCE]
)
_EDITED_POSTGRES = " OR ".join(
    [f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _FIXED]
    + [f"(OLD.{c} IS NOT NULL AND NEW.{c} IS DISTINCT FROM OLD.{c})" for c in _ONCE]
)
_NEVER_CHANGED = ("consent_organisation", "consent_document")
_CONSENT_SQLITE = (
    "CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent "
    "BEGIN SELECT RAISE(ABORT, 'consents are never deleted'); END",
    f"CREATE TRIGGER consent_no_edit BEFORE UPDATE ON consent WHEN {_EDITED_SQLITE} "
    "BEGIN SELECT RAISE(ABORT, 'consents are never edited: record a new version'); END",
    *(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
      "BEGIN SELECT RAISE(ABORT, 'consents are never edited: record a new version'); END"
      for t in _NEVER_CHANGED),
    *(f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
      f"BEGIN SELECT RAISE(ABORT, 'consents are never deleted'); END" for t in _NEVER_CHANGED),
)
_CONSENT_POSTGRES = (
    "CREATE FUNCTION consent_never_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF TG_OP = 'DELETE' THEN "
    "RAISE EXCEPTION 'consents are never deleted' USING ERRCODE = 'insufficient_privilege'; END IF; "
    "RAISE EXCEPTION 'consents are never edited: record a new version' "
    "USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent "
    "FOR EACH ROW EXECUTE FUNCTION consent_never_changed()",
    f"CREATE TRIGGER consent_no_edit BEFORE UPDATE ON consent FOR EACH ROW WHEN ({_EDITED_POSTGRES}) "
    "EXECUTE FUNCTION consent_never_changed()",
    "CREATE TRIGGER consent_no_truncate BEFORE TRUNCATE ON consent "
    "FOR EACH STATEMENT EXECUTE FUNCTION consent_never_changed()",
    *(f"CREATE TRIGGER {t}_no_update_delete BEFORE UPDATE OR DELETE ON {t} "
      "FOR EACH ROW EXECUTE FUNCTION consent_never_changed()" for t in _NEVER_CHANGED),
    *(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
      "FOR EACH STATEMENT EXECUTE FUNCTION consent_never_changed()" for t in _NEVER_CHANGED),
)


def _dialect() -> str:
    name = op.get_bind().dialect.name
    if name not in ("sqlite", "postgresql"):
        raise RuntimeError(f"no triggers for the {name} dialect")
    return name


def upgrade() -> None:
    dialect = _dialect()
    if dialect == "sqlite":
        # SQLite adds a CHECK only by rebuilding the table, which drops its triggers: create them again.
        with op.batch_alter_table('audit_event', schema=None, recreate='always') as batch_op:
            batch_op.create_check_constraint('ck_audit_event_seq_positive', 'seq > 0')
        for statement in (*_AUDIT_APPEND_ONLY_SQLITE, *_AUDIT_SEQUENCE_SQLITE, *_CONSENT_SQLITE):
            op.execute(statement)
    else:
        for statement in (*_AUDIT_SEQUENCE_POSTGRES, *_CONSENT_POSTGRES):
            op.execute(statement)
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_state', sa.String(length=30), nullable=True))


def downgrade() -> None:
    dialect = _dialect()
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.drop_column('consent_state')
    if dialect == "sqlite":
        for table in _NEVER_CHANGED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.execute("DROP TRIGGER IF EXISTS consent_no_edit")
        op.execute("DROP TRIGGER IF EXISTS consent_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_event_in_sequence")
        with op.batch_alter_table('audit_event', schema=None, recreate='always') as batch_op:
            batch_op.drop_constraint('ck_audit_event_seq_positive', type_='check')
        for statement in _AUDIT_APPEND_ONLY_SQLITE:
            op.execute(statement)
        return
    for table in _NEVER_CHANGED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
    for trigger in ("consent_no_truncate", "consent_no_edit", "consent_no_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON consent")
    op.execute("DROP FUNCTION IF EXISTS consent_never_changed()")
    op.execute("DROP TRIGGER IF EXISTS audit_event_in_sequence ON audit_event")
    op.execute("DROP FUNCTION IF EXISTS audit_event_in_sequence()")
    op.execute("ALTER TABLE audit_event DROP CONSTRAINT IF EXISTS ck_audit_event_seq_positive")
