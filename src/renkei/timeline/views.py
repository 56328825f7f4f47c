"""Entry rows -> API models: decrypt, attach names, receipts, files and derived bonuses, in a few batched
queries; the parts of a sheet whose own category the reader's consent does not cover are withheld."""

from __future__ import annotations

import uuid
from collections import defaultdict, namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import (
    ColumnElement, Row, Select, bindparam, case, exists, literal_column, select, type_coerce, union_all,
)
from sqlalchemy.orm import Session

from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto import aead
from renkei.crypto.keyring import Keyring
from renkei.db.types import INTERNED_UUID, utcnow
from renkei.directory.models import Organisation, User
from renkei.patients import keys
from renkei.sheets import service as sheet_service
from renkei.sheets import subtrees
from renkei.sheets.registry import SheetRegistry
from renkei.sheets.subtrees import Subtree
from renkei.timeline import bonuses, paper
from renkei.timeline.models import (
    Attachment,
    EntryAttachment,
    EntryRead,
    EntryRecipient,
    EntryStatus,
    TimelineEntry,
)
from renkei.timeline.schemas import AttachmentOut, EntryOut, PaperOut
from renkei.web import images

PAYLOAD_AAD = "timeline_entry.payload_ct"
AMENDMENT_AAD = "timeline_entry.amendment_reason_ct"
ERROR_AAD = "timeline_entry.error_reason_ct"
_ENTRY_LIST = TypeAdapter(list[EntryOut])
# Sheets whose view reads or completes their data (the ACP's status, the bonuses): always parsed.
_DATA_READ = frozenset({"acp", "admission-info", "discharge-info"})

# Statements built once: every page read runs them. Plain table columns (no ORM entities), and expanding IN
# parameters so that one compiled form serves every page.
_entry_t, _recipient_t = TimelineEntry.__table__, EntryRecipient.__table__  # type: ignore[attr-defined]
_read_t = EntryRead.__table__  # type: ignore[attr-defined]
_attached_t, _file_t = EntryAttachment.__table__, Attachment.__table__  # type: ignore[attr-defined]
_user_t, _org_t = User.__table__, Organisation.__table__  # type: ignore[attr-defined]
_RECIPIENTS = select(_recipient_t).where(_recipient_t.c.entry_id.in_(bindparam("ids", expanding=True)))
_READ_BY_ME = select(_read_t.c.entry_id).where(_read_t.c.user_id == bindparam("user_id"),
                                               _read_t.c.entry_id.in_(bindparam("ids", expanding=True)))
_RECEIPTS = (select(_read_t).where(_read_t.c.entry_id.in_(bindparam("ids", expanding=True)))
             .order_by(_read_t.c.read_at))
# Staff and organisation names (directory data, not PHI) in one round trip.
_NAMES = union_all(
    select(literal_column("'user'"), _user_t.c.id, _user_t.c.name)
    .where(_user_t.c.id.in_(bindparam("user_ids", expanding=True))),
    select(literal_column("'org'"), _org_t.c.id, _org_t.c.name)
    .where(_org_t.c.id.in_(bindparam("org_ids", expanding=True))),
)
READER_PARAM = "feed_reader_id"
_READ_FLAG = exists(select(_read_t.c.entry_id).where(
    _read_t.c.entry_id == _entry_t.c.id, _read_t.c.user_id == bindparam(READER_PARAM))).label("read_by_me")
_ADDRESSED_FLAG = exists(select(_recipient_t.c.id).where(
    _recipient_t.c.entry_id == _entry_t.c.id)).label("has_recipients")
# The latest emergency sheet as the summary shows it (most recently recorded, final): what a grant reads.
_CURRENT_EMERGENCY = (
    select(_entry_t.c.id)
    .where(_entry_t.c.patient_id == bindparam("patient_id"), _entry_t.c.sheet_id == "emergency-info",
           _entry_t.c.is_head.is_(True), _entry_t.c.status == EntryStatus.final.value,
           paper.not_paper(_entry_t.c))
    .order_by(_entry_t.c.record_posted_at.desc(), _entry_t.c.record_id.desc())
    .limit(1)
)
_ATTACHED_FLAG = exists(select(_attached_t.c.entry_id).where(
    _attached_t.c.entry_id == _entry_t.c.id)).label("has_attachments")
_ATTACHMENTS = (
    select(_attached_t.c.entry_id, _file_t.c.id, _file_t.c.patient_id, _file_t.c.sheet_id,
           _file_t.c.content_type, _file_t.c.size, _file_t.c.created_at)
    .join(_file_t, _file_t.c.id == _attached_t.c.attachment_id)
    .where(_attached_t.c.entry_id.in_(bindparam("ids", expanding=True)))
    .order_by(_attached_t.c.entry_id, _attached_t.c.position)
)


def _current_acp(t: Any, patient: ColumnElement[Any]) -> Select[tuple[uuid.UUID]]:
    return (
        select(t.c.record_id)
        .where(t.c.patient_id == patient, t.c.sheet_id == "acp", t.c.is_head.is_(True),
               t.c.status == EntryStatus.final.value, paper.not_paper(t.c),
               # A row being posted in this transaction, not yet stamped: PostgreSQL sorts NULL first.
               t.c.record_posted_at.is_not(None))
        .order_by(t.c.record_posted_at.desc(), t.c.record_id.desc())
        .limit(1)
    )


_CURRENT_ACP = _current_acp(_entry_t, bindparam("patient_id"))
PATIENT_PARAM = "feed_patient_id"
# The feed's own columns for what build_fields would otherwise look up in two more round trips: the
# author's and the author's organisation's names, and, on ACP rows only (a handful a page), the current ACP
# record of the row's patient.
_acp_t = _entry_t.alias("current_acp")
_AUTHOR_NAME = (select(_user_t.c.name).where(_user_t.c.id == _entry_t.c.author_id)
                .scalar_subquery().label("author_name"))
_AUTHOR_ORG_NAME = (select(_org_t.c.name).where(_org_t.c.id == _entry_t.c.author_organisation_id)
                    .scalar_subquery().label("author_organisation_name"))
_ACP_CURRENT = type_coerce(case(
    (_entry_t.c.sheet_id == "acp", _current_acp(_acp_t, _entry_t.c.patient_id).scalar_subquery()), else_=None,
), INTERNED_UUID).label("acp_current_record")


def seal(session: Session, keyring: Keyring, entry: TimelineEntry, aad: str, value: Any) -> bytes:
    """Encrypt a value of this entry row with the patient's data key, bound to the row."""
    return keys.seal_json(session, keyring, entry.patient_id, aad=aad, binding=str(entry.id), value=value)


class Unsealer:
    """Opens entry ciphertexts like `keys.open_json`, looking each data key up once per batch."""

    def __init__(self, session: Session, keyring: Keyring) -> None:
        self.session, self.keyring = session, keyring
        self._openers: dict[tuple[uuid.UUID, bytes], aead.Opener] = {}

    def __call__(self, entry: Any, aad: str, blob: bytes | None) -> Any:
        if blob is None:
            return None
        return keys.loads(self.plain(entry, aad, blob))

    def plain(self, entry: Any, aad: str, blob: bytes) -> bytes:
        """The decrypted bytes, not parsed."""
        # The envelope's key id bytes as they are: Opener.open checks the envelope itself.
        found = (entry.patient_id, blob[2:2 + blob[1]] if len(blob) > 1 else b"")
        opener = self._openers.get(found)
        if opener is None:
            # key_by_id refuses a key of another patient, so a moved ciphertext still fails here.
            key = keys.key_by_id(self.session, self.keyring, entry.patient_id, aead.key_id_of(blob))
            opener = self._openers[found] = aead.Opener(key)
        return opener.open(blob, aad=aad, binding=str(entry.id))


def unseal(session: Session, keyring: Keyring, entry: TimelineEntry, aad: str, blob: bytes | None) -> Any:
    """Decrypt one value of an entry row."""
    return Unsealer(session, keyring)(entry, aad, blob)


def etag(entry: TimelineEntry) -> str:
    """Strong validator for If-Match: the record version and the draft revision."""
    return f'"{entry.version}.{entry.revision}"'


def current_acp_record(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    """The one current ACP: the most recently recorded posted ACP record that is not entered in error."""
    return session.scalars(_CURRENT_ACP, {"patient_id": patient_id}).first()


def current_emergency_ids(session: Session, patient_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """What a break-the-glass grant may read: the latest emergency sheet (the one the summary shows) and the
    current ACP version; no earlier versions, no superseded ACP."""
    emergency = session.scalars(_CURRENT_EMERGENCY, {"patient_id": patient_id}).first()
    record = current_acp_record(session, patient_id)
    acp = session.scalars(select(_entry_t.c.id).where(
        _entry_t.c.record_id == record, _entry_t.c.is_head.is_(True))).first() if record else None
    return frozenset(i for i in (emergency, acp) if i is not None)


def is_current_emergency(session: Session, entry: TimelineEntry) -> bool:
    """Whether this one entry is in a break-the-glass grant's reach (see `current_emergency_ids`)."""
    return entry.sheet_id in ("emergency-info", "acp") and entry.id in current_emergency_ids(
        session, entry.patient_id)


def feed_flags() -> tuple[ColumnElement[Any], ...]:
    """Columns a feed query adds so that `build` needs no per-page lookups by id for them:
    whether the reader (bound as `READER_PARAM` when the query runs) has read each entry, whether it has
    addressees, whether it carries files; the author's and organisation's names; on ACP rows, the current
    ACP record of the row's patient."""
    return _READ_FLAG, _ADDRESSED_FLAG, _ATTACHED_FLAG, _AUTHOR_NAME, _AUTHOR_ORG_NAME, _ACP_CURRENT


def registry(settings: Settings) -> SheetRegistry:
    """The sheet registry the application serves (loaded from the settings' schema directory)."""
    return sheet_service.registry_for(settings.schemas_dir)


def withheld_subtrees(sheets: SheetRegistry, sheet_id: str, version: int,
                      readable: frozenset[str]) -> list[Subtree]:
    """The parts of a sheet version with a category of their own that `readable` does not include."""
    return [s for s in sheets.subtrees(sheet_id, version) if s.category not in readable]


def build(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entries: Sequence[Any],
    readable: Mapping[uuid.UUID, frozenset[str]], detail: bool = False, flagged: bool = False,
    unlinked: bool = False,
) -> list[EntryOut]:
    """API models for entry rows the caller has already been allowed to read (see `build_fields`)."""
    return validate(build_fields(session, keyring=keyring, settings=settings, actor=actor, entries=entries,
                                 readable=readable, detail=detail, flagged=flagged, unlinked=unlinked))


def validate(fields: list[dict[str, Any]]) -> list[EntryOut]:
    """EntryOut models from `build_fields` output: one validation of the whole page (pydantic's core, no
    per-model Python call), the same checks and coercions as constructing each model."""
    return _ENTRY_LIST.validate_python(fields)


def _model_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=_model_json)


def encode(body: Any) -> bytes:
    """JSON of `build_fields` output (inside a response body), without building the models first.

    The fields already hold what validation would (the model's fields, in its order, of the model's
    types): the JSON is that of the models' `model_dump_json`, at a quarter of the cost, on the busiest
    read, byte for byte but for the spelling of some floats (`1e16`, not `1e+16`; in a sheet's data
    embedded as decrypted, `json`'s spelling, such as `1e-05`): the same values.
    tests/timeline/test_timeline_json.py holds the two equal across every sheet and kind of entry state.
    """
    return _ENCODER.encode(body)


def build_fields(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, entries: Sequence[Any],
    readable: Mapping[uuid.UUID, frozenset[str]], detail: bool = False, flagged: bool = False,
    as_json: bool = False, unlinked: bool = False,
) -> list[dict[str, Any]]:
    """The fields of the EntryOut of each entry row the caller has already been allowed to read.

    `readable` holds, per patient, the categories the reader's access decision covers: the parts of a sheet
    with another category are left out of `data` and named in `withheld`. `entries` are `TimelineEntry`
    objects or Core rows of its table (the feed reads rows: no ORM identity map for 50 read-only rows);
    `flagged` rows also carry the `feed_flags` columns. The lookups below are Core queries, which do not
    autoflush, so pending changes are flushed first as an ORM query would. `as_json`: the fields go to
    `encode` only, so a sheet's data shown whole and untouched stays the decrypted JSON (`keys.as_json`).
    `unlinked`: the caller has just stored these entries without addressees or files (nothing to look up).
    """
    if not entries:
        return []
    if session.autoflush:
        session.flush()
    entries = plain_rows(entries)
    ids = [e.id for e in entries]
    addressed = [] if unlinked else [e.id for e in entries if e.has_recipients] if flagged else ids
    recipients: dict[uuid.UUID, list[Any]] = defaultdict(list)
    if addressed:
        for r in session.execute(_RECIPIENTS, {"ids": addressed}):
            recipients[r.entry_id].append(r)
    with_files = [] if unlinked else [e.id for e in entries if e.has_attachments] if flagged else ids
    files: dict[uuid.UUID, list[AttachmentOut]] = defaultdict(list)
    if with_files:
        for f in session.execute(_ATTACHMENTS, {"ids": with_files}):
            files[f.entry_id].append(AttachmentOut(
                id=f.id, patient_id=f.patient_id, sheet=f.sheet_id, content_type=f.content_type, size=f.size,
                created_at=f.created_at, metadata_stripped=f.content_type in images.FORMATS))
    if flagged:
        read = {e.id for e in entries if e.read_by_me}
    else:
        # An author has read their own entries (the response to a post or an amendment: no lookup).
        others = [e.id for e in entries if e.author_id != actor.user_id]
        read = set(session.scalars(_READ_BY_ME, {"user_id": actor.user_id, "ids": others})) if others else set()
    reads: dict[uuid.UUID, list[Any]] = defaultdict(list)
    if detail:
        for row in session.execute(_RECEIPTS, {"ids": ids}):
            reads[row.entry_id].append(row)
    users: dict[uuid.UUID, str] = {}
    orgs: dict[uuid.UUID, str] = {}
    user_ids = {e.error_by for e in entries if e.error_by}
    user_ids |= {u for rs in recipients.values() for r in rs for u in (r.user_id, r.acknowledged_by) if u}
    user_ids |= {row.user_id for rows in reads.values() for row in rows}
    org_ids = {r.organisation_id for rs in recipients.values() for r in rs if r.organisation_id}
    acp_current: dict[uuid.UUID, uuid.UUID | None] = {}
    if flagged:
        for e in entries:
            users[e.author_id], orgs[e.author_organisation_id] = e.author_name, e.author_organisation_name
            if e.sheet_id == "acp":
                acp_current[e.patient_id] = e.acp_current_record
        user_ids -= users.keys()
        org_ids -= orgs.keys()
    else:
        user_ids |= {e.author_id for e in entries}
        org_ids |= {e.author_organisation_id for e in entries}
        acp_current = {
            pid: current_acp_record(session, pid)
            for pid in {e.patient_id for e in entries if e.sheet_id == "acp"}
        }
    if user_ids or org_ids:
        for kind, id_, name in session.execute(_NAMES, {"user_ids": list(user_ids),
                                                        "org_ids": list(org_ids)}):
            (users if kind == "user" else orgs)[id_] = name
    context = _Context(users, orgs, utcnow() - timedelta(hours=settings.ack_overdue_hours),
                       Unsealer(session, keyring), registry(settings), readable, {}, as_json)
    papers = paper.states(session, entries)
    none: list[Any] = []
    # (Looked up only where there is something to find: each lookup hashes a UUID in Python.)
    fields = [
        _one(e, context, recipients.get(e.id, none) if recipients else none,
             e.author_id == actor.user_id or (bool(read) and e.id in read),
             acp_current.get(e.patient_id) if acp_current else None,
             (reads.get(e.id, none) if reads else none) if detail else None,
             files.get(e.id, none) if files else none, papers.get(e.id) if papers else None)
        for e in entries
    ]
    return fields


_ROW_TYPES: dict[tuple[str, ...], type] = {}


def plain_rows(entries: Sequence[Any]) -> Sequence[Any]:
    """Core rows as named tuples (same attribute names); other objects as they are.

    Building an entry reads some forty attributes of its row, and a SQLAlchemy `Row` resolves each by name
    in Python (~1 µs); a named tuple's attribute is a C-level index (~50 ns).
    """
    if not entries or not isinstance(entries[0], Row):
        return entries
    first = entries[0]
    fields = first._fields
    row_type = _ROW_TYPES.get(fields)
    if row_type is None:
        try:
            row_type = _ROW_TYPES[fields] = namedtuple("EntryRow", fields)  # type: ignore[misc]
        except ValueError:
            return entries  # a label that cannot be a tuple field (a keyword, a leading '_'): rows as they are
    make = row_type._make
    return [make(e) for e in entries]


@dataclass(frozen=True)
class _Context:
    users: dict[uuid.UUID, str]
    orgs: dict[uuid.UUID, str]
    overdue_before: datetime
    unseal: Unsealer
    sheets: SheetRegistry
    readable: Mapping[uuid.UUID, frozenset[str]]
    # (patient, sheet, version) -> the sub-trees withheld from this reader, worked out once per page.
    hidden: dict[tuple[uuid.UUID, str, int], list[Subtree]]
    as_json: bool = False

    def withheld(self, e: Any) -> list[Subtree]:
        key = (e.patient_id, e.sheet_id, e.sheet_version)
        hidden = self.hidden.get(key)
        if hidden is None:
            # No decision for the patient means nothing of a category of its own is shown (fail closed).
            readable = self.readable.get(e.patient_id, frozenset())
            hidden = self.hidden[key] = withheld_subtrees(self.sheets, e.sheet_id, e.sheet_version, readable)
        return hidden

    def user_name(self, user_id: uuid.UUID | None) -> str | None:
        return self.users.get(user_id) if user_id else None

    def org_name(self, org_id: uuid.UUID | None) -> str | None:
        return self.orgs.get(org_id) if org_id else None


def _one(
    e: Any, ctx: _Context, recipients: list[Any], read_by_me: bool,
    current_acp: uuid.UUID | None, reads: list[Any] | None, files: list[AttachmentOut],
    paper_state: PaperOut | None = None,
) -> dict[str, Any]:
    """The fields of one EntryOut (validated by the caller, a page at a time)."""
    hidden = ctx.withheld(e)
    sheet_id = e.sheet_id
    data: Any
    if ctx.as_json and not hidden and sheet_id not in _DATA_READ and e.payload_ct is not None:
        # Most of a page: shown whole and untouched, so not parsed and encoded again (~15 µs an entry).
        data, withheld = keys.as_json(ctx.unseal.plain(e, PAYLOAD_AAD, e.payload_ct)), []
    else:
        data, withheld = subtrees.withhold(ctx.unseal(e, PAYLOAD_AAD, e.payload_ct), hidden)
    if paper_state is not None and hidden:
        # The image shows every part of the form, the withheld ones too.
        paper_state = paper_state.model_copy(update={"attachment_id": None, "content_type": None,
                                                     "image_withheld": True})
    status, posted_at = e.status, e.posted_at
    live = e.is_head and status == EntryStatus.final
    acp_is_current: bool | None = None
    if sheet_id == "acp" and posted_at is not None and paper_state is None:
        acp_is_current = live and e.record_id == current_acp
        if status == EntryStatus.final:
            data["status"] = "current" if acp_is_current else "superseded"
    recipient_out: list[dict[str, Any]] = []
    if recipients:
        overdue_cut = live and posted_at is not None and posted_at < ctx.overdue_before
        recipient_out = [
            {"id": r.id, "organisation_id": r.organisation_id,
             "organisation_name": ctx.org_name(r.organisation_id), "user_id": r.user_id,
             "user_name": ctx.user_name(r.user_id), "acknowledged_at": r.acknowledged_at,
             "acknowledged_by": r.acknowledged_by, "acknowledged_by_name": ctx.user_name(r.acknowledged_by),
             "overdue": bool(overdue_cut and r.acknowledged_at is None)}
            for r in sorted(recipients, key=lambda r: (str(r.organisation_id or ""), str(r.user_id or "")))
        ]
    error = None
    if status == EntryStatus.entered_in_error and e.error_at and e.error_by:
        error = {"at": e.error_at, "by": e.error_by, "by_name": ctx.user_name(e.error_by) or "",
                 "reason": ctx.unseal(e, ERROR_AAD, e.error_reason_ct) or ""}
    author_id, org_id = e.author_id, e.author_organisation_id
    return {
        "id": e.id, "record_id": e.record_id, "patient_id": e.patient_id, "sheet": sheet_id,
        "sheet_version": e.sheet_version, "category": e.category, "version": e.version,
        "revision": e.revision, "status": status, "priority": e.priority, "is_current": e.is_head,
        "data": data,
        "author": {"user_id": author_id, "name": ctx.users.get(author_id) or "",
                   "profession": e.author_profession, "organisation_id": org_id,
                   "organisation_name": ctx.orgs.get(org_id) or ""},
        "created_at": e.created_at, "updated_at": e.updated_at, "posted_at": posted_at,
        "record_posted_at": e.record_posted_at, "supersedes_id": e.supersedes_id,
        "amendment_reason": ctx.unseal(e, AMENDMENT_AAD, e.amendment_reason_ct), "entered_in_error": error,
        "recipients": recipient_out,
        "awaiting_acknowledgement": live and any(r.acknowledged_at is None for r in recipients),
        "acknowledgement_overdue": any(r["overdue"] for r in recipient_out), "read_by_me": read_by_me,
        "acp_current": acp_is_current,
        # The bonus is earned by the first posting; amending a typo later does not send the sheet again.
        "admission_bonus": (bonuses.admission_bonus(data, e.record_posted_at) if sheet_id == "admission-info"
                            else None),
        "discharge_bonus": bonuses.discharge_bonus(data) if sheet_id == "discharge-info" else None,
        "read_by": None if reads is None else [
            {"user_id": r.user_id, "name": ctx.user_name(r.user_id) or "", "read_at": r.read_at}
            for r in reads
        ],
        "attachments": files, "withheld": withheld, "paper": paper_state,
        "transcribed_from_id": e.transcribes_id,
    }
