"""PostgreSQL: audit_chain_head(lock_key), the chain's lock and head in one round trip

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:00:00

Appending audit rows takes the chain's transaction advisory lock and then reads the newest row. As two
statements that is two round trips on every audited request. In one SQL statement the head would be read
from the snapshot taken *before* the lock was granted, missing a row committed while waiting for it; a
VOLATILE function's statements each take a fresh snapshot (read committed), so the SELECT after PERFORM
sees every row committed by the lock's previous holder (in READ COMMITTED, which it checks: a transaction
snapshot would hide them). SQLite needs nothing: BEGIN IMMEDIATE holds the write lock for the whole
transaction.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the function on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION audit_chain_head(lock_key bigint) RETURNS TABLE (seq bigint, mac varchar) "
        "LANGUAGE plpgsql VOLATILE AS $$ "
        # Under REPEATABLE READ or SERIALIZABLE the SELECT would see the transaction's first snapshot.
        "BEGIN IF current_setting('transaction_isolation') <> 'read committed' THEN "
        "RAISE EXCEPTION 'the audit chain is appended in READ COMMITTED transactions only' "
        "USING ERRCODE = 'invalid_transaction_state'; END IF; "
        "PERFORM pg_advisory_xact_lock(lock_key); "
        "RETURN QUERY SELECT a.seq, a.mac::varchar FROM audit_event AS a ORDER BY a.seq DESC LIMIT 1; "
        "END $$"
    )


def downgrade() -> None:
    """Drop it."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_chain_head(bigint)")
