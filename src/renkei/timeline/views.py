"""Entry rows -> API models: decrypt, attach names, receipts and derived bonuses, in a few batched queries."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto import aead
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, User
from renkei.patients import keys
from renkei.timeline import bonuses
from renkei.timeline.models import EntryRead, EntryRecipient, EntryStatus, TimelineEntry
from renkei.timeline.schemas import AuthorOut, EntryOut, ErrorMark, ReadOut, RecipientOut

PAYLOAD_AAD = "timeline_entry.payload_ct"
AMENDMENT_AAD = "timeline_entry.amendment_reason_ct"
ERROR_AAD = "timeline_entry.error_reason_ct"


def seal(session: Session, keyring: Keyring, entry: TimelineEntry, aad: str, value: Any) -> bytes:
    """Encrypt a value of this entry row with the patient's data key, bound to the row."""
    return keys.seal_json(session, keyring, entry.patient_id, aad=aad, binding=str(entry.id), value=value)


class Unsealer:
    """Opens entry ciphertexts like `keys.open_json`, looking each data key up once per batch."""

    def __init__(self, session: Session, keyring: Keyring) -> None:
        self.session, self.keyring = session, keyring
        self._keys: dict[tuple[uuid.UUID, str], bytes] = {}

    def __call__(self, entry: TimelineEntry, aad: str, blob: bytes | None) -> Any:
        if blob is None:
            return None
        key_id = aead.key_id_of(blob)
        key = self._keys.get((entry.patient_id, key_id))
        if key is None:
            # key_by_id refuses a key of another patient, so a moved ciphertext still fails here.
            key = keys.key_by_id(self.session, self.keyring, entry.patient_id, key_id)
            self._keys[(entry.patient_id, key_id)] = key
        return json.loads(aead.open_(key, blob, aad=aad, binding=str(entry.id)))


def unseal(session: Session, keyring: Keyring, entry: TimelineEntry, aad: str, blob: bytes | None) -> Any:
    """Decrypt one value of an entry row."""
    return Unsealer(session, keyring)(entry, aad, blob)


def etag(entry: TimelineEntry) -> str:
    """Strong validator for If-Match: the record version and the draft revision."""
    return f'"{entry.version}.{entry.revision}"'


def current_acp_record(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    """The one current ACP: the most recently recorded posted ACP record that is not entered in error."""
    return session.scalars(
        select(TimelineEntry.record_id)
        .where(TimelineEntry.patient_id == patient_id, TimelineEntry.sheet_id == "acp",
               TimelineEntry.is_head.is_(True), TimelineEntry.status == EntryStatus.final)
        .order_by(TimelineEntry.record_posted_at.desc(), TimelineEntry.record_id.desc())
        .limit(1)
    ).first()


def build(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entries: list[TimelineEntry],
    detail: bool = False,
) -> list[EntryOut]:
    """API models for entry rows the caller has already been allowed to read."""
    if not entries:
        return []
    ids = [e.id for e in entries]
    recipients: dict[uuid.UUID, list[EntryRecipient]] = defaultdict(list)
    for r in session.scalars(select(EntryRecipient).where(EntryRecipient.entry_id.in_(ids))):
        recipients[r.entry_id].append(r)
    read = set(session.scalars(
        select(EntryRead.entry_id).where(EntryRead.user_id == actor.user_id, EntryRead.entry_id.in_(ids))
    ))
    reads: dict[uuid.UUID, list[EntryRead]] = defaultdict(list)
    if detail:
        receipts = select(EntryRead).where(EntryRead.entry_id.in_(ids)).order_by(EntryRead.read_at)
        for row in session.scalars(receipts):
            reads[row.entry_id].append(row)
    user_ids = {e.author_id for e in entries} | {e.error_by for e in entries if e.error_by}
    user_ids |= {u for rs in recipients.values() for r in rs for u in (r.user_id, r.acknowledged_by) if u}
    user_ids |= {row.user_id for rows in reads.values() for row in rows}
    org_ids = {e.author_organisation_id for e in entries}
    org_ids |= {r.organisation_id for rs in recipients.values() for r in rs if r.organisation_id}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}
    acp_current = {
        pid: current_acp_record(session, pid)
        for pid in {e.patient_id for e in entries if e.sheet_id == "acp"}
    }
    context = _Context(users, orgs, utcnow() - timedelta(hours=settings.ack_overdue_hours),
                       Unsealer(session, keyring))
    return [
        _one(e, context, recipients[e.id], e.id in read or e.author_id == actor.user_id,
             acp_current.get(e.patient_id), reads[e.id] if detail else None)
        for e in entries
    ]


@dataclass(frozen=True)
class _Context:
    users: dict[uuid.UUID, User]
    orgs: dict[uuid.UUID, Organisation]
    overdue_before: datetime
    unseal: Unsealer

    def user_name(self, user_id: uuid.UUID | None) -> str | None:
        user = self.users.get(user_id) if user_id else None
        return user.name if user else None

    def org_name(self, org_id: uuid.UUID | None) -> str | None:
        org = self.orgs.get(org_id) if org_id else None
        return org.name if org else None


def _one(
    e: TimelineEntry, ctx: _Context, recipients: list[EntryRecipient], read_by_me: bool,
    current_acp: uuid.UUID | None, reads: list[EntryRead] | None,
) -> EntryOut:
    data = ctx.unseal(e, PAYLOAD_AAD, e.payload_ct)
    live = e.is_head and e.status == EntryStatus.final
    acp_is_current: bool | None = None
    if e.sheet_id == "acp" and e.posted_at is not None:
        acp_is_current = live and e.record_id == current_acp
        if e.status == EntryStatus.final:
            data["status"] = "current" if acp_is_current else "superseded"
    overdue_cut = live and e.posted_at is not None and e.posted_at < ctx.overdue_before
    recipient_out = [
        RecipientOut(
            id=r.id, organisation_id=r.organisation_id, organisation_name=ctx.org_name(r.organisation_id),
            user_id=r.user_id, user_name=ctx.user_name(r.user_id), acknowledged_at=r.acknowledged_at,
            acknowledged_by=r.acknowledged_by, acknowledged_by_name=ctx.user_name(r.acknowledged_by),
            overdue=bool(overdue_cut and r.acknowledged_at is None),
        )
        for r in sorted(recipients, key=lambda r: (str(r.organisation_id or ""), str(r.user_id or "")))
    ]
    error = None
    if e.status == EntryStatus.entered_in_error and e.error_at and e.error_by:
        error = ErrorMark(at=e.error_at, by=e.error_by, by_name=ctx.user_name(e.error_by) or "",
                          reason=ctx.unseal(e, ERROR_AAD, e.error_reason_ct) or "")
    author = AuthorOut(user_id=e.author_id, name=ctx.user_name(e.author_id) or "",
                       profession=e.author_profession, organisation_id=e.author_organisation_id,
                       organisation_name=ctx.org_name(e.author_organisation_id) or "")
    return EntryOut(
        id=e.id, record_id=e.record_id, patient_id=e.patient_id, sheet=e.sheet_id,
        sheet_version=e.sheet_version, category=e.category, version=e.version, revision=e.revision,
        status=e.status, priority=e.priority,
        is_current=e.is_head, data=data, author=author, created_at=e.created_at, updated_at=e.updated_at,
        posted_at=e.posted_at, supersedes_id=e.supersedes_id,
        amendment_reason=ctx.unseal(e, AMENDMENT_AAD, e.amendment_reason_ct), entered_in_error=error,
        recipients=recipient_out,
        awaiting_acknowledgement=live and any(r.acknowledged_at is None for r in recipients),
        acknowledgement_overdue=any(r.overdue for r in recipient_out), read_by_me=read_by_me,
        acp_current=acp_is_current,
        admission_bonus=(bonuses.admission_bonus(data, e.posted_at) if e.sheet_id == "admission-info"
                         else None),
        discharge_bonus=bonuses.discharge_bonus(data) if e.sheet_id == "discharge-info" else None,
        read_by=None if reads is None else [
            ReadOut(user_id=r.user_id, name=ctx.user_name(r.user_id) or "", read_at=r.read_at) for r in reads
        ],
    )
