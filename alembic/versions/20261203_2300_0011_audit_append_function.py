"""PostgreSQL: audit_append(lock_key, expected_seq, expected_mac, rows): lock, head check, insert in one call

An audited request on PostgreSQL appended its rows in two round trips: audit_chain_head (0010) for the lock
and the head, then the INSERT. The process now guesses the head (the one it last committed) and computes
the MACs against it; this function takes the same lock, reads the head with a fresh snapshot (a VOLATILE
function, READ COMMITTED only, as 0010 explains) and inserts the rows only if the head is the guessed one,
its sequence number and its MAC (a restored database can hold another row under the same number).
Otherwise it inserts nothing and returns the real head, against which the caller chains again and calls
once more (the lock is held by then, so the head cannot move). A wrong guess costs a round trip, never a
fork: the database checks it under the lock, and its triggers still accept rows only as seq = max + 1.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the function on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION audit_append("
        "lock_key bigint, expected_seq bigint, expected_mac varchar, new_rows jsonb) "
        "RETURNS TABLE (seq bigint, mac varchar, appended boolean) "
        "LANGUAGE plpgsql VOLATILE AS $$ "
        "DECLARE head_seq bigint; head_mac varchar; "
        "BEGIN IF current_setting('transaction_isolation') <> 'read committed' THEN "
        "RAISE EXCEPTION 'the audit chain is appended in READ COMMITTED transactions only' "
        "USING ERRCODE = 'invalid_transaction_state'; END IF; "
        "PERFORM pg_advisory_xact_lock(lock_key); "
        "SELECT a.seq, a.mac INTO head_seq, head_mac FROM audit_event AS a ORDER BY a.seq DESC LIMIT 1; "
        "IF COALESCE(head_seq, 0) <> expected_seq OR head_mac IS DISTINCT FROM expected_mac THEN "
        "RETURN QUERY SELECT COALESCE(head_seq, 0)::bigint, head_mac::varchar, false; RETURN; END IF; "
        "INSERT INTO audit_event SELECT * FROM jsonb_populate_recordset(NULL::audit_event, new_rows); "
        "RETURN QUERY SELECT expected_seq, head_mac::varchar, true; "
        "END $$"
    )


def downgrade() -> None:
    """Drop it."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_append(bigint, bigint, varchar, jsonb)")
