"""The audit chain: append-only in the database, and any modified, deleted, inserted or reordered row is
found by verification, naming the first broken sequence number."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from renkei.audit import service as audit
from renkei.audit.models import AuditEvent
from tests.audit.support import append, checks_off, checks_on, tamper, triggers_off
from tests.factories import auth_headers


@pytest.fixture
def anchor(db) -> int:
    """Rows committed by earlier tests (other keys, other runs) are outside this test: verify after them."""
    return audit.head(db)[0]


def test_rows_written_by_requests_verify(client, db, settings, keyring, world, anchor):
    headers = auth_headers(db, settings, keyring, world.nurse)
    for path in (f"/api/v1/patients/{world.patient_id}", "/api/v1/patients", f"/api/v1/patients/{world.outsider.id}"):
        client.get(path, headers=headers)
    result = audit.verify(db, keyring, after_seq=anchor)
    assert result.ok and result.rows >= 3 and result.broken_seq is None


def test_database_refuses_to_update_or_delete_audit_rows(db, keyring, anchor):
    seq = append(db, keyring, 2)[0]
    for statement in ("UPDATE audit_event SET reason = 'edited' WHERE seq = :seq",
                      "DELETE FROM audit_event WHERE seq = :seq"):
        with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
            db.execute(text(statement), {"seq": seq})
    assert db.scalar(select(AuditEvent.reason).where(AuditEvent.seq == seq)) == "test_0"


def test_postgresql_refuses_truncate(db, keyring):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    append(db, keyring, 1)
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("TRUNCATE audit_event"))


def test_a_modified_row_is_named_as_the_first_broken_one(db, keyring, anchor):
    seqs = append(db, keyring, 6)
    triggers_off(db)
    tamper(db, "UPDATE audit_event SET decision = 'allow', reason = 'team_consent' WHERE seq = :seq", seq=seqs[3])
    result = audit.verify(db, keyring, after_seq=anchor)
    assert (result.ok, result.broken_seq) == (False, seqs[3])


def test_a_modified_row_is_found_even_when_its_mac_is_recomputed_without_the_key(db, keyring, anchor):
    seqs = append(db, keyring, 4)
    triggers_off(db)
    row = db.get(AuditEvent, seqs[1])
    row.target_ids = json.dumps([str(uuid.uuid4())])
    forged = audit.chain_mac(b"\x00" * 32, row, bytes.fromhex(db.get(AuditEvent, seqs[0]).mac))
    row.mac = forged.hex()
    db.flush()
    assert audit.verify(db, keyring, after_seq=anchor).broken_seq == seqs[1]


def test_a_deleted_row_is_found(db, keyring, anchor):
    seqs = append(db, keyring, 5)
    triggers_off(db)
    tamper(db, "DELETE FROM audit_event WHERE seq = :seq", seq=seqs[2])
    result = audit.verify(db, keyring, after_seq=anchor)
    assert (result.ok, result.broken_seq) == (False, seqs[2])


def test_an_inserted_row_is_found(db, keyring, anchor):
    seqs = append(db, keyring, 3)
    db.add(AuditEvent(seq=seqs[-1] + 1, occurred_at=db.get(AuditEvent, seqs[-1]).occurred_at, action="lookup",
                      decision="allow", reason="exact_match", target_ids="[]", mac="00" * 32))
    db.flush()
    result = audit.verify(db, keyring, after_seq=anchor)
    assert (result.ok, result.broken_seq) == (False, seqs[-1] + 1)


def _forged_row(db, seq: int) -> AuditEvent:
    newest = db.get(AuditEvent, audit.head(db)[0])
    return AuditEvent(seq=seq, occurred_at=newest.occurred_at, action="read_clinical", decision="allow",
                      reason="team_consent", target_ids="[]", mac="00" * 32)


@pytest.mark.parametrize("seq", [0, -7])
def test_a_row_slipped_in_before_the_first_one_is_found(db, keyring, anchor, seq):
    append(db, keyring, 3)
    triggers_off(db)
    checks_off(db)
    try:
        db.add(_forged_row(db, seq))
        db.flush()
    finally:
        checks_on(db)
    for after in (0, anchor):
        result = audit.verify(db, keyring, after_seq=after)
        assert (result.ok, result.broken_seq) == (False, seq), result
        assert "precedes the first row" in result.problem


@pytest.mark.parametrize("offset", [-1, 0, 2], ids=["duplicate", "head", "gap"])
def test_the_database_refuses_a_row_out_of_sequence(db, keyring, offset):
    append(db, keyring, 2)
    head = audit.head(db)[0]
    with pytest.raises(DBAPIError), db.begin_nested():
        db.add(_forged_row(db, head + 1 + offset if offset else head))
        db.flush()
    with pytest.raises(DBAPIError, match="sequence|ck_audit_event_seq_positive|CHECK"), db.begin_nested():
        db.add(_forged_row(db, 0))
        db.flush()
    db.add(_forged_row(db, head + 1))  # the next number is the only one accepted
    db.flush()
    assert audit.head(db)[0] == head + 1


def test_a_row_replaced_in_the_middle_is_found(db, keyring, anchor):
    seqs = append(db, keyring, 5)
    triggers_off(db)
    original = db.get(AuditEvent, seqs[2])
    replacement = {c: getattr(original, c) for c in AuditEvent.model_fields}
    tamper(db, "DELETE FROM audit_event WHERE seq = :seq", seq=seqs[2])
    db.add(AuditEvent(**(replacement | {"reason": "innocent", "seq": seqs[2]})))
    db.flush()
    assert audit.verify(db, keyring, after_seq=anchor).broken_seq == seqs[2]


def test_reordered_rows_are_found(db, keyring, anchor):
    seqs = append(db, keyring, 6)
    triggers_off(db)
    a, b = db.get(AuditEvent, seqs[1]), db.get(AuditEvent, seqs[4])
    columns = [c for c in AuditEvent.model_fields if c != "seq"]
    values_a, values_b = ({c: getattr(r, c) for c in columns} for r in (a, b))
    for column in columns:
        setattr(a, column, values_b[column])
        setattr(b, column, values_a[column])
    db.flush()
    assert audit.verify(db, keyring, after_seq=anchor).broken_seq == seqs[1]


def test_rows_removed_from_the_end_are_caught_by_a_signed_checkpoint(db, keyring, anchor, tmp_path):
    seqs = append(db, keyring, 4)
    assert audit.checkpoint_now(db, keyring, tmp_path) is not None
    assert audit.verify(db, keyring, checkpoints=tmp_path, after_seq=anchor).ok
    triggers_off(db)
    tamper(db, "DELETE FROM audit_event WHERE seq >= :seq", seq=seqs[2])
    assert audit.verify(db, keyring, after_seq=anchor).ok  # the chain alone cannot see a shorter log
    result = audit.verify(db, keyring, checkpoints=tmp_path, after_seq=anchor)
    assert (result.ok, result.broken_seq) == (False, seqs[2])


def test_a_checkpoint_that_disagrees_with_the_log_names_that_row(db, keyring, anchor, tmp_path):
    seqs = append(db, keyring, 3)
    audit.checkpoint_now(db, keyring, tmp_path)
    triggers_off(db)
    rebuilt_mac = "ab" * 32
    tamper(db, "UPDATE audit_event SET mac = :mac WHERE seq = :seq", mac=rebuilt_mac, seq=seqs[-1])
    assert audit.verify(db, keyring, checkpoints=tmp_path, after_seq=anchor).broken_seq == seqs[-1]


def test_a_forged_checkpoint_file_is_refused(db, keyring, anchor, tmp_path):
    append(db, keyring, 2)
    path = audit.checkpoint_now(db, keyring, tmp_path)
    doc = json.loads(path.read_text())
    doc["seq"] += 10
    path.write_text(json.dumps(doc))
    result = audit.verify(db, keyring, checkpoints=tmp_path, after_seq=anchor)
    assert not result.ok and "signature" in result.problem


def test_checkpoints_are_signed_every_n_rows_after_commit(db, keyring, settings, tmp_path):
    hook_settings = settings.model_copy(update={"audit_checkpoint_every": 2, "audit_checkpoint_dir": tmp_path})
    hook = audit.precommit_hook(keyring, hook_settings)
    heads = [audit.head(db)[0]]
    for _ in range(3):
        audit.record(db, actor=None, action="lookup", allowed=True, reason="no_match")
        hook(db)
        heads.append(audit.head(db)[0])
    assert list(tmp_path.iterdir()) == []  # nothing is signed before the transaction commits
    for fn in db.info.pop("after_commit", []):
        fn()
    crossing = [seq for before, seq in zip(heads, heads[1:]) if before // 2 != seq // 2]
    written = audit.read_checkpoints(tmp_path, keyring)
    assert [cp.seq for cp in written] == crossing and all(cp.valid for cp in written)
    assert all(cp.mac == db.get(AuditEvent, cp.seq).mac for cp in written)
