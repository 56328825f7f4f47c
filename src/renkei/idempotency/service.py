"""Idempotency-Key: a POST retried by a tablet on a flaky network replays its first response.

Keys are scoped per user and kept at least seven days. The stored response holds patient data, so it is
sealed with the patient's data key, and a replay passes the access decision again before it is served.
Each kind of POST says how (a `Guard`): timeline writes by default; consents and break-the-glass their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.crypto.keyring import Keyring
from renkei.db.session import upsert
from renkei.db.types import new_id, utcnow
from renkei.errors import Conflict, FieldProblem, InvalidInput, NotFound
from renkei.idempotency.exceptions import IdempotencyKeyReused
from renkei.idempotency.models import IdempotencyKey
from renkei.patients import keys

TTL = timedelta(days=7)
RESPONSE_AAD = "idempotency_key.response_ct"
HEADER_POINTER = "/header/idempotency-key"
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
IdempotencyKeyHeader = Annotated[str | None, Header(max_length=200, description="Retry-safe POST key")]
_key_t = IdempotencyKey.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool


@dataclass(frozen=True)
class Guard:
    """How a keyed POST meets the access decision point. `admit` refuses (404, audited) an actor who cannot
    reach this patient at all, before the key is validated or stored: otherwise a malformed key (422) or the
    stored key's foreign key (409) would answer differently for a patient that exists than for one that does
    not. `replay` decides again (raising 404) before a stored response is served; it gets the response's
    category."""

    admit: Callable[[Session, Actor, uuid.UUID], None]
    replay: Callable[[Session, Actor, uuid.UUID, str | None], None]


def reading(read: Action, refused_as: Action) -> Guard:
    """A guard for POSTs whose own service decides the write: it admits whoever may `read` the patient (so a
    team member without the right gets the service's 403), refuses everyone else with 404 audited as
    `refused_as`, and serves a replay to whoever may still `read` it (with the response's category)."""
    def admit_fn(session: Session, actor: Actor, patient_id: uuid.UUID) -> None:
        if access.can(session, actor, read, patient_id):
            return
        # Anyone who may write may read, so this refuses too; it records the denial and raises 404.
        access.require(session, actor, refused_as, patient_id, category=None)
        raise NotFound()

    def replay_fn(session: Session, actor: Actor, patient_id: uuid.UUID, category: str | None) -> None:
        access.require(session, actor, read, patient_id, category=category)

    return Guard(admit_fn, replay_fn)


def requiring(admit: Action, replay: Action) -> Guard:
    """A guard from two actions: the one the POST needs, and the one that reads its response back."""
    def admit_fn(session: Session, actor: Actor, patient_id: uuid.UUID) -> None:
        if not access.can(session, actor, admit, patient_id):
            access.require(session, actor, admit, patient_id)  # audits the denial, raises 404

    def replay_fn(session: Session, actor: Actor, patient_id: uuid.UUID, category: str | None) -> None:
        access.require(session, actor, replay, patient_id)

    return Guard(admit_fn, replay_fn)


CLINICAL = reading(Action.read_clinical, Action.write_clinical)
# Care-team changes: the team is visible with the registration; the change itself needs manage_team.
TEAM = reading(Action.read_registration, Action.manage_team)


def fingerprint(method: str, path: str, content: Any) -> str:
    """Digest of what makes two requests "the same": method, path and the parsed body (key order ignored)."""
    canonical = content if isinstance(content, bytes) else json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode("utf-8")
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def without_secrets(body: BaseModel) -> dict[str, Any]:
    """A request body for `fingerprint` without the re-entered password and one-time code: the stored
    fingerprint must not become a way to test guesses of them offline."""
    return body.model_dump(mode="json", exclude={"password", "otp"})


def respond(outcome: Outcome) -> JSONResponse:
    """The outcome as the HTTP response; a replay says so in `Idempotent-Replayed`."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


def run(
    session: Session, *, keyring: Keyring, actor: Actor, key: str | None, request_fingerprint: str,
    patient_id: uuid.UUID, status_code: int, produce: Callable[[], BaseModel], guard: Guard = CLINICAL,
) -> Outcome:
    """Produce the response once per key; later requests with the same key and body get it again."""
    if key is None:
        return Outcome(status_code, produce().model_dump(mode="json"), False)
    guard.admit(session, actor, patient_id)
    claimed = _claim(session, keyring=keyring, actor=actor, key=key, request_fingerprint=request_fingerprint,
                     patient_id=patient_id, guard=guard)
    if isinstance(claimed, Outcome):
        return claimed
    result = produce()
    body = result.model_dump(mode="json")
    sealed = keys.seal_json(session, keyring, patient_id, aad=RESPONSE_AAD, binding=str(claimed), value=body)
    stored = session.execute(update(_key_t).where(_key_t.c.id == claimed).values(
        status_code=status_code, category=getattr(result, "category", None), response_ct=sealed))
    if getattr(stored, "rowcount", 1) != 1:
        # Never expected: a key left without its response would answer 409 to every retry for a week.
        raise RuntimeError("the claimed idempotency key row is gone")
    return Outcome(status_code, body, False)


def purge_expired(session: Session, *, user_id: uuid.UUID | None = None) -> int:
    """Delete keys past their retention (one user's, or everyone's); they hold no record, only a sealed copy
    of a response, which should not outlive its purpose."""
    # One DELETE statement: no rows (nor their sealed responses) loaded, and no row locks taken one by one.
    query = delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
    if user_id is not None:
        query = query.where(IdempotencyKey.user_id == user_id)
    result = session.execute(query.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _claim(
    session: Session, *, keyring: Keyring, actor: Actor, key: str, request_fingerprint: str,
    patient_id: uuid.UUID, guard: Guard,
) -> uuid.UUID | Outcome:
    """The id of the key row claimed for this request, or the outcome of the request that claimed it first."""
    if not _KEY.fullmatch(key):
        raise InvalidInput(fields=[FieldProblem(HEADER_POINTER, "1〜200文字の英数字・記号で指定してください",
                                                "Must be 1-200 visible ASCII characters")])
    now = utcnow()
    # A user's expired keys go when they claim a new one (an index range on expires_at): the table stays
    # bounded by a week of each user's posts without a scheduler.
    purge_expired(session, user_id=actor.user_id)
    # One statement claims a new key. A key already stored (or being stored by a concurrent request, which
    # PostgreSQL waits for) leaves the insert a no-op, and that request's answer is replayed below.
    claim_id = new_id()
    session.flush()  # as an ORM insert would: work pending in the session comes first
    claimed = session.execute(
        upsert(session, _key_t)
        .values(id=claim_id, user_id=actor.user_id, key=key, fingerprint=request_fingerprint,
                patient_id=patient_id, created_at=now, expires_at=now + TTL)
        .on_conflict_do_nothing(index_elements=[_key_t.c.user_id, _key_t.c.key])
        .returning(_key_t.c.id)
    ).first()
    if claimed is not None:
        return claim_id
    row = _find(session, actor.user_id, key)
    if row is None:
        raise Conflict("A request with this Idempotency-Key is in progress; retry")
    if row.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(fields=[FieldProblem(
            HEADER_POINTER, "この Idempotency-Key は別の内容の送信に使われています",
            "This key was already used for a request with a different body")])
    if row.status_code is None or row.response_ct is None:
        raise Conflict("A request with this Idempotency-Key is in progress; retry")
    guard.replay(session, actor, row.patient_id, row.category)
    body = keys.open_json(session, keyring, row.patient_id, row.response_ct, aad=RESPONSE_AAD,
                          binding=str(row.id))
    return Outcome(row.status_code, body, True)


def _find(session: Session, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).first()
