"""Audit rows: queued in the request's session, chained and written by the pre-commit hook, verified later.

A request leaves one row per distinct decision it made (actor, action, event, patient, allow/deny, reason,
consent, grant): the same decision taken twice in one request (a page that reads the header and the
team) is one row, with the ids of everything it disclosed or changed. A request that touched a patient
leaves at least one row about that patient, even when it fails: denials stay as they are, and a patient
it was allowed to touch gets a "request_failed" row instead of the allowed one (nothing was disclosed).
Reads that show several patients at once say so in one row per patient (lists) or one row naming them all
(unread counts, which are polled).

Rows are buffered in `session.info` and written in one go just before commit, under a lock that
serialises appends (SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL takes a
transaction advisory lock), so concurrent requests extend one chain and never fork it; the database
accepts rows only in sequence (seq = max + 1) and never changes or removes one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.orm import Session

from renkei.audit.models import AuditEvent
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import WRITES, after_commit, after_rollback
from renkei.db.types import utcnow
from renkei.directory.models import User

if TYPE_CHECKING:
    # Annotations only: auth records sign-ins here, so importing it at run time would be a cycle.
    from renkei.auth.service import Actor

BUFFER_KEY = "audit_buffer"
GENESIS_MAC = bytes(32)
# Arbitrary constant naming the audit chain's PostgreSQL advisory lock ("RENKAUDT").
_PG_LOCK_KEY = 0x52454E4B41554454
CHECKPOINT_GLOB = "checkpoint-*.json"
_audit_t = AuditEvent.__table__  # type: ignore[attr-defined]
_HEAD = select(_audit_t.c.seq, _audit_t.c.mac).order_by(_audit_t.c.seq.desc()).limit(1)
# PostgreSQL: the chain's lock, then its head, in one round trip (migration 0010 says why a function).
_PG_LOCKED_HEAD = text("SELECT seq, mac FROM audit_chain_head(:key)").execution_options(**{WRITES: ()})
# PostgreSQL: the lock, the head checked against the guess and the rows inserted in one round trip (0011).
_PG_APPEND = text(
    "SELECT seq, mac, appended FROM audit_append(:key, :expected, :expected_mac, CAST(:rows AS jsonb))"
).execution_options(**{WRITES: (_audit_t.name,)})

ALLOW = "allow"
DENY = "deny"


@dataclass
class PendingEvent:
    """An audit row waiting for the pre-commit hook. Mutable so list reads can add the ids they disclosed."""

    occurred_at: datetime
    action: str
    decision: str
    reason: str
    request_id: str | None = None
    actor_user_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    profession: str | None = None
    role: str | None = None
    event: str | None = None
    patient_id: uuid.UUID | None = None
    targets: list[str] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)
    sheet_ids: set[str] = field(default_factory=set)
    consent_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    client_addr: str | None = None
    persist_on_failure: bool = False

    def merge_key(self) -> tuple[Any, ...]:
        return (self.actor_user_id, self.action, self.event, self.patient_id, self.decision, self.reason,
                self.consent_id, self.grant_id)

    def add_targets(self, ids: Iterable[object]) -> None:
        """Record ids of the objects this access disclosed or changed (kept once, in order)."""
        seen = set(self.targets)
        for target in ids:
            value = str(target)
            if value not in seen:
                seen.add(value)
                self.targets.append(value)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    head_seq: int
    broken_seq: int | None = None
    problem: str | None = None


# -- recording ------------------------------------------------------------------------------


def _request_context(session: Session) -> tuple[str | None, str | None]:
    request = session.info.get("request")
    if request is None:
        return None, None
    request_id = getattr(request.state, "request_id", None)
    client = request.client.host if request.client else None
    return request_id, client


def _buffer(session: Session) -> dict[tuple[Any, ...], PendingEvent]:
    # Keyed by merge key, in insertion order: a list page may queue hundreds of rows.
    return session.info.setdefault(BUFFER_KEY, {})


FAILED = "request_failed"


def _keep_rows_that_must_survive(session: Session) -> None:
    # Runs after the request's transaction was rolled back: allowed reads of a failed request disclosed
    # nothing, but denials and failed re-authentications must stay on record, and a patient the request
    # was allowed to touch keeps one row saying that the attempt failed (a request that touched a patient
    # always leaves a row).
    queued = _buffer(session)
    kept = {key: row for key, row in queued.items() if row.persist_on_failure}
    covered = {row.patient_id for row in kept.values()}
    for row in queued.values():
        if row.persist_on_failure or row.patient_id is None or row.patient_id in covered:
            continue
        covered.add(row.patient_id)
        row.decision, row.reason, row.persist_on_failure = DENY, FAILED, True
        kept[row.merge_key()] = row
    session.info[BUFFER_KEY] = kept


def record(
    session: Session, *, actor: Actor | None, action: str, allowed: bool, reason: str,
    patient_id: uuid.UUID | None = None, targets: Sequence[object] = (), category: str | None = None,
    sheet_id: str | None = None, consent_id: uuid.UUID | None = None, grant_id: uuid.UUID | None = None,
    event: str | None = None, persist_on_failure: bool | None = None,
) -> PendingEvent:
    """Queue one audit row for this transaction (denials survive a rollback).

    Repeats of the same decision within one request (a page that reads the header and the team)
    merge into one row, so a request that touched a patient leaves one row per distinct decision.
    """
    request_id, client = _request_context(session)
    row = PendingEvent(
        occurred_at=utcnow(), action=action, decision=ALLOW if allowed else DENY, reason=reason,
        request_id=request_id, client_addr=client, event=event, patient_id=patient_id,
        consent_id=consent_id, grant_id=grant_id,
        persist_on_failure=(not allowed) if persist_on_failure is None else persist_on_failure,
    )
    if actor is not None:
        row.actor_user_id, row.organisation_id = actor.user_id, actor.organisation_id
        row.profession, row.role = actor.profession, actor.role
    queued = _buffer(session).setdefault(row.merge_key(), row)
    queued.persist_on_failure = queued.persist_on_failure or row.persist_on_failure
    row = queued
    row.add_targets(targets)
    if category:
        row.categories.add(category)
    if sheet_id:
        row.sheet_ids.add(sheet_id)
    if (row.persist_on_failure or row.patient_id is not None) and \
            _keep_rows_that_must_survive not in session.info.get("after_rollback", []):
        after_rollback(session, _keep_rows_that_must_survive)
    return row


def pending(session: Session) -> list[PendingEvent]:
    """Rows queued in this session and not yet written (tests and diagnostics)."""
    return list(_buffer(session).values())


def keep_pending_on_failure(session: Session) -> None:
    """Mark every queued row to survive a rollback: for a failing request whose response still shows
    patient data (a form page re-rendered with its error)."""
    for row in _buffer(session).values():
        row.persist_on_failure = True
    if _keep_rows_that_must_survive not in session.info.get("after_rollback", []):
        after_rollback(session, _keep_rows_that_must_survive)


# -- the chain ------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: Any) -> bytes:
    """The bytes the MAC covers: every column but the MAC, in a fixed JSON form."""
    def opt(value: object) -> str | None:
        return None if value is None else str(value)

    body = {
        "seq": row.seq, "occurred_at": _iso(row.occurred_at), "request_id": row.request_id,
        "actor_user_id": opt(row.actor_user_id), "organisation_id": opt(row.organisation_id),
        "profession": row.profession, "role": row.role, "action": row.action, "event": row.event,
        "patient_id": opt(row.patient_id), "target_ids": row.target_ids, "categories": row.categories,
        "sheet_ids": row.sheet_ids, "decision": row.decision, "reason": row.reason,
        "consent_id": opt(row.consent_id), "grant_id": opt(row.grant_id), "client_addr": row.client_addr,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_mac(key: bytes, row: Any, previous: bytes) -> bytes:
    """HMAC-SHA256 over the row's canonical form followed by the previous row's MAC (`row`: model or Row)."""
    return hmac.new(key, canonical(row) + previous, hashlib.sha256).digest()


def _locked_head(session: Session) -> tuple[int, bytes]:
    """`head` after taking the lock that serialises appends (on SQLite the transaction already holds it)."""
    if session.get_bind().dialect.name != "postgresql":
        return head(session)
    latest = session.execute(_PG_LOCKED_HEAD, {"key": _PG_LOCK_KEY}).first()
    return (latest[0], bytes.fromhex(latest[1])) if latest else (0, GENESIS_MAC)


def head(session: Session) -> tuple[int, bytes]:
    """The newest row's (seq, mac); (0, genesis) for an empty log."""
    latest = session.execute(_HEAD).first()
    return (latest[0], bytes.fromhex(latest[1])) if latest else (0, GENESIS_MAC)


def write_pending(session: Session, keyring: Keyring) -> tuple[int, int, bytes] | None:
    """Chain and insert the queued rows; returns (previous head seq, new head seq, new head mac)."""
    queued = list(session.info.pop(BUFFER_KEY, {}).values())
    if not queued:
        return None
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return _append_on_postgresql(session, keyring, queued, bind)
    start, mac = head(session)  # (SQLite: the transaction's BEGIN IMMEDIATE already holds the write lock)
    values, seq, mac = _chained(keyring, queued, start, mac)
    # A Core executemany on the table: the rows are never read back in this transaction, so neither model
    # instances nor the ORM's bulk path are needed.
    session.execute(insert(_audit_t), values)
    return start, seq, mac


# The head this process last committed, per database: the guess `audit_append` checks under the chain's lock.
_committed_heads: dict[str, tuple[int, bytes]] = {}
_WRITTEN_KEY = "audit_written_head"


def _append_on_postgresql(
    session: Session, keyring: Keyring, queued: list[PendingEvent], bind: Any,
) -> tuple[int, int, bytes]:
    """One round trip when the guessed head is right (migration 0011), two when another transaction has
    appended since this process last did; the database checks the guess under the lock either way."""
    database = str(bind.engine.url)
    start, mac = _committed_heads.get(database) or _locked_head(session)
    for _attempt in range(2):
        values, seq, new_mac = _chained(keyring, queued, start, mac)
        found = session.execute(_PG_APPEND, {"key": _PG_LOCK_KEY, "expected": start,
                                             "expected_mac": mac.hex() if start else None,
                                             "rows": _json_rows(values)}).one()
        if found.appended:
            break
        start, mac = found.seq, bytes.fromhex(found.mac) if found.mac else GENESIS_MAC
    else:  # the lock is held since the first call: the head cannot have moved again
        raise RuntimeError("the audit chain's head moved while its lock was held")
    session.info[_WRITTEN_KEY] = (database, seq, new_mac)
    return start, seq, new_mac


@event.listens_for(Session, "after_commit")
def _remember_committed_head(session: Session) -> None:
    # (Two threads' commits may land here out of order: the next append then guesses wrong once.)
    written = session.info.pop(_WRITTEN_KEY, None)
    if written is not None:
        database, seq, mac = written
        _committed_heads[database] = (seq, mac)


@event.listens_for(Session, "after_soft_rollback")
def _forget_written_head(session: Session, _previous: Any) -> None:
    session.info.pop(_WRITTEN_KEY, None)


def _json_rows(values: list[dict[str, Any]]) -> str:
    """The rows for jsonb_populate_recordset: ids as text, times as naive UTC ISO text (as stored)."""
    def plain(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None).isoformat()
        return value

    return json.dumps([{k: plain(v) for k, v in row.items()} for row in values], ensure_ascii=False)


def _chained(
    keyring: Keyring, queued: list[PendingEvent], start: int, mac: bytes,
) -> tuple[list[dict[str, Any]], int, bytes]:
    """The queued rows numbered after `start` and chained after `mac`: (rows, last seq, last mac)."""
    seq = start
    key = keyring.audit_key
    values = []
    for item in queued:
        seq += 1
        row = {
            "seq": seq, "occurred_at": item.occurred_at, "request_id": item.request_id,
            "actor_user_id": item.actor_user_id, "organisation_id": item.organisation_id,
            "profession": item.profession, "role": item.role, "action": item.action, "event": item.event,
            "patient_id": item.patient_id,
            "target_ids": json.dumps(item.targets, separators=(",", ":")),
            "categories": ",".join(sorted(item.categories)) or None,
            "sheet_ids": ",".join(sorted(item.sheet_ids)) or None,
            "decision": item.decision, "reason": item.reason, "consent_id": item.consent_id,
            "grant_id": item.grant_id, "client_addr": item.client_addr, "mac": "",
        }
        mac = chain_mac(key, SimpleNamespace(**row), mac)
        row["mac"] = mac.hex()
        values.append(row)
    return values, seq, mac


def checkpoint_dir(settings: Settings) -> Path:
    return settings.audit_checkpoint_dir or settings.var_dir / "audit-checkpoints"


def precommit_hook(keyring: Keyring, settings: Settings) -> Callable[[Session], None]:
    """The hook app.py registers: write the queued rows; every N rows, sign a checkpoint after commit."""
    every = settings.audit_checkpoint_every
    directory = checkpoint_dir(settings)

    def hook(session: Session) -> None:
        written = write_pending(session, keyring)
        if written is None or not every:
            return
        before, seq, mac = written
        if before // every != seq // every:
            after_commit(session, lambda: write_checkpoint(directory, keyring, seq=seq, mac=mac))

    return hook


# -- checkpoints ----------------------------------------------------------------------------


def _signing_key(keyring: Keyring) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keyring.checkpoint_key)


def _checkpoint_body(seq: int, mac_hex: str, signed_at: str, key_id: str) -> bytes:
    body = {"seq": seq, "mac": mac_hex, "signed_at": signed_at, "key_id": key_id}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def _key_id(keyring: Keyring) -> str:
    public = _signing_key(keyring).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(public).hexdigest()[:16]


def write_checkpoint(directory: Path, keyring: Keyring, *, seq: int, mac: bytes) -> Path:
    """Sign (seq, mac) with the Ed25519 checkpoint key and write it atomically outside the database."""
    directory.mkdir(parents=True, exist_ok=True)
    signed_at, key_id = _iso(utcnow()), _key_id(keyring)
    body = _checkpoint_body(seq, mac.hex(), signed_at, key_id)
    document = {"seq": seq, "mac": mac.hex(), "signed_at": signed_at, "key_id": key_id,
                "signature": _signing_key(keyring).sign(body).hex()}
    target = directory / f"checkpoint-{seq:012d}.json"
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            json.dump(document, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def checkpoint_now(session: Session, keyring: Keyring, directory: Path) -> Path | None:
    """Sign the current head of the committed log (cron, `renkei audit checkpoint`, after verify)."""
    seq, mac = head(session)
    return write_checkpoint(directory, keyring, seq=seq, mac=mac) if seq else None


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str
    path: Path
    valid: bool


def read_checkpoints(directory: Path | None, keyring: Keyring) -> list[Checkpoint]:
    if directory is None or not directory.is_dir():
        return []
    public = _signing_key(keyring).public_key()
    out = []
    for path in sorted(directory.glob(CHECKPOINT_GLOB)):
        try:
            doc = json.loads(path.read_text("ascii"))
            body = _checkpoint_body(int(doc["seq"]), str(doc["mac"]), str(doc["signed_at"]),
                                    str(doc["key_id"]))
            public.verify(bytes.fromhex(doc["signature"]), body)
            out.append(Checkpoint(int(doc["seq"]), str(doc["mac"]), path, True))
        except (InvalidSignature, ValueError, KeyError, TypeError, UnicodeDecodeError):
            seq = int(path.stem.rsplit("-", 1)[-1]) if path.stem.rsplit("-", 1)[-1].isdigit() else 0
            out.append(Checkpoint(seq, "", path, False))
    return out


# -- verification ---------------------------------------------------------------------------


def verify(
    session: Session, keyring: Keyring, *, checkpoints: Path | None = None, after_seq: int = 0,
) -> VerifyResult:
    """Recompute the chain; name the first broken sequence number.

    `after_seq` starts from a row trusted as an anchor (its stored MAC), for logs whose beginning
    was verified earlier. Signed checkpoints catch rows removed from the end of the log.
    """
    known = read_checkpoints(checkpoints, keyring)
    forged = [cp for cp in known if not cp.valid]
    if forged:
        problem = f"checkpoint file {forged[0].path.name} has a bad signature"
        return VerifyResult(False, 0, 0, forged[0].seq, problem)
    table = AuditEvent.__table__
    # The chain starts at 1: a row numbered 0 or below sits outside it, where the walk below never looks.
    first = session.scalar(select(func.min(table.c.seq)))
    if first is not None and first < 1:
        return VerifyResult(False, 0, 0, first, f"row {first} precedes the first row of the log")
    expected = {cp.seq: cp.mac for cp in known if cp.seq > after_seq}
    previous = GENESIS_MAC
    if after_seq:
        anchor = session.get(AuditEvent, after_seq)
        if anchor is None:
            return VerifyResult(False, 0, 0, after_seq, "anchor row is missing")
        previous = bytes.fromhex(anchor.mac)
    key, count, seq = keyring.audit_key, 0, after_seq
    rows = session.execute(
        select(table).where(table.c.seq > after_seq).order_by(table.c.seq).execution_options(yield_per=5000)
    )
    for row in rows:
        seq += 1
        if row.seq != seq:
            return VerifyResult(False, count, seq - 1, seq, f"row {seq} is missing (next is {row.seq})")
        computed = chain_mac(key, row, previous)
        if not hmac.compare_digest(computed.hex(), row.mac):
            return VerifyResult(False, count, seq - 1, seq, f"row {seq} does not match its MAC")
        if seq in expected and not hmac.compare_digest(expected[seq], row.mac):
            return VerifyResult(False, count, seq - 1, seq, f"row {seq} differs from the signed checkpoint")
        previous = computed
        count += 1
    beyond = sorted(s for s in expected if s > seq)
    if beyond:
        return VerifyResult(False, count, seq, seq + 1,
                            f"rows after {seq} are missing (a signed checkpoint names row {beyond[-1]})")
    if not after_seq:
        # From the start, rows 1..head are all there is. Bounded by the head walked: rows appended by the
        # running application meanwhile are not a fault.
        total = session.scalar(select(func.count()).select_from(table).where(table.c.seq <= seq)) or 0
        if total != seq:
            return VerifyResult(False, count, seq, first, f"the log holds {total} rows up to row {seq}")
    return VerifyResult(True, count, seq)


# -- staff administration and sign-in -------------------------------------------------------


def record_account(
    session: Session, *, actor: Actor | None, event: str, account: User | None, allowed: bool = True,
    reason: str = "ok",
) -> PendingEvent:
    """A staff administration action (by `actor`, on `account`) or a sign-in (`actor` None), as ids and
    codes. A sign-in is the account's own action; a failed one has no actor, only the account tried (if it
    exists) and its organisation, so that its administrators find it. Failures survive the request's
    rollback."""
    action = "sign_in" if event.startswith("auth.") else "staff_admin"
    row = record(session, actor=actor, action=action, allowed=allowed, reason=reason, event=event,
                 targets=[account.id] if account is not None else (), persist_on_failure=not allowed)
    if actor is None and account is not None:
        row.organisation_id = account.organisation_id
        if allowed:
            row.actor_user_id, row.profession, row.role = account.id, account.profession, account.role
    return row
