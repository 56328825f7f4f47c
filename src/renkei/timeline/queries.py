"""Reading the timeline: the paged feed, my drafts, the patient's summary card and unread counts."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, func, or_, select, true
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.engine import BINARY_RESULTS
from renkei.db.types import read_columns, today_jst
from renkei.directory.models import Organisation, User
from renkei.errors import FieldProblem, InvalidInput
from renkei.patients import keys
from renkei.patients.models import CareTeamMembership, Patient, TeamRole
from renkei.sheets import subtrees
from renkei.sheets.registry import SheetRegistry
from renkei.sheets.service import JST
from renkei.timeline import guard, paper, views
from renkei.timeline.models import EntryRead, EntryStatus, TimelineEntry
from renkei.timeline.schemas import (
    AcpSummary,
    AttendingPhysician,
    EmergencySummary,
    EntryOut,
    PaperAwaiting,
    SummaryOut,
    TimelinePage,
    TimelineQuery,
)

_entry_t, _read_t = TimelineEntry.__table__, EntryRead.__table__  # type: ignore[attr-defined]
# A page of the feed: table columns, not ORM attributes (plain rows: no identity map, no instances), the
# patient's posted records in the categories the reader's decision covers, newest first. Built once: an
# unfiltered page (the usual read) runs it as it is, filters add conditions to it. Its rows carry the
# patient's active data key row, which the page's payloads are (nearly always) sealed with.
_FEED = keys.with_active_key(
    select(*read_columns(_entry_t), *views.feed_flags())
    .where(_entry_t.c.patient_id == bindparam(views.PATIENT_PARAM), _entry_t.c.is_head.is_(True),
           _entry_t.c.record_posted_at.is_not(None),
           _entry_t.c.category.in_(bindparam("feed_categories", expanding=True)))
    .order_by(_entry_t.c.record_posted_at.desc(), _entry_t.c.record_id.desc())
    .limit(bindparam("feed_limit", type_=Integer)),
    _entry_t, bindparam(views.PATIENT_PARAM),
).execution_options(**{BINARY_RESULTS: True})


def timeline(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    query: TimelineQuery,
) -> TimelinePage:
    """Posted records (their current version), newest first by when each was first posted, one page at a
    time; narrowed in SQL to what the actor may read.

    An amendment does not move a record to the top: a clinician scanning the timeline reads it in the order
    things were reported, and the entry says it was amended.
    """
    fields, cursor = _timeline_fields(session, keyring=keyring, settings=settings, actor=actor,
                                      patient_id=patient_id, query=query)
    return TimelinePage(items=views.validate(fields), next_cursor=cursor)


def timeline_json(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    query: TimelineQuery,
) -> bytes:
    """`timeline(...)` as the API's JSON body, encoded straight from the page's fields (see views.encode)."""
    fields, cursor = _timeline_fields(session, keyring=keyring, settings=settings, actor=actor,
                                      patient_id=patient_id, query=query, as_json=True)
    return views.encode({"items": fields, "next_cursor": cursor})


def _timeline_fields(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    query: TimelineQuery, as_json: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    decision = guard.require(session, actor, Action.read_clinical, patient_id, category=None)
    t = _entry_t
    first_posted = t.c.record_posted_at
    q = _FEED
    if decision.current_only:
        q = q.where(t.c.id.in_(views.current_emergency_ids(session, patient_id)))
    if query.kind:
        q = q.where(t.c.sheet_id.in_(query.kind))
    if query.profession:
        q = q.where(t.c.author_profession.in_(query.profession))
    if query.since:
        q = q.where(first_posted >= _jst_midnight(query.since))
    if query.until:
        q = q.where(first_posted < _jst_midnight(query.until + timedelta(days=1)))
    if query.unread:
        read = exists(select(_read_t.c.entry_id).where(_read_t.c.entry_id == t.c.id,
                                                        _read_t.c.user_id == actor.user_id))
        q = q.where(t.c.status == EntryStatus.final, t.c.author_id != actor.user_id, ~read)
    if query.cursor:
        posted_at, record_id = decode_cursor(query.cursor)
        q = q.where(or_(first_posted < posted_at, and_(first_posted == posted_at, t.c.record_id < record_id)))
    # The same categories access.category_clause narrows other lists to, bound into the prebuilt statement.
    rows = session.execute(q, {views.READER_PARAM: actor.user_id, views.PATIENT_PARAM: patient_id,
                               "feed_categories": access.category_values(decision),
                               "feed_limit": query.limit + 1}).all()
    if rows:
        keys.carried_key(session, rows[0])
    page, more = rows[: query.limit], len(rows) > query.limit
    page = views.plain_rows(page)
    access.disclosed(decision, [e.id for e in page])
    fields = views.build_fields(session, keyring=keyring, settings=settings, actor=actor, entries=page,
                                flagged=True, readable={patient_id: decision.categories}, as_json=as_json)
    last = page[-1] if more else None
    return fields, encode_cursor(last.record_posted_at, last.record_id) if last is not None else None


def check_kinds(registry: SheetRegistry, query: TimelineQuery) -> None:
    """422 naming each `kind` that is no sheet: a typo would otherwise show an empty timeline."""
    known = {s.id for s in registry.all()}
    problems = [FieldProblem(f"/query/kind/{i}", "不明な記録の種類です", "Unknown sheet kind")
                for i, kind in enumerate(query.kind) if kind not in known]
    if problems:
        raise InvalidInput(fields=problems)


def drafts(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID
) -> list[EntryOut]:
    """My unposted drafts for this patient, newest first."""
    decision = guard.require(session, actor, Action.read_clinical, patient_id, category=None)
    rows = list(session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.patient_id == patient_id, TimelineEntry.author_id == actor.user_id,
            TimelineEntry.status == EntryStatus.draft,
            access.category_clause(decision, TimelineEntry.category),
        ).order_by(TimelineEntry.updated_at.desc(), TimelineEntry.id.desc())
    ))
    access.disclosed(decision, [r.id for r in rows])
    return views.build(session, keyring=keyring, settings=settings, actor=actor, entries=rows,
                       readable={patient_id: decision.categories})


def unread_counts(
    session: Session, *, actor: Actor, patient_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, int]:
    """Unread posted entries per patient I may list (0 included), counted in SQL under the consent rules.

    Given `patient_ids` (a list the caller has already narrowed and audited), only those are counted, in one
    query."""
    if patient_ids is None:
        listed = select(Patient.id).where(access.patients_clause(actor, Patient.id))
        counts = {pid: 0 for pid in session.scalars(listed)}
        among = true()
    else:
        counts = {pid: 0 for pid in patient_ids}
        among = TimelineEntry.patient_id.in_(list(patient_ids))
    rows = session.execute(
        select(TimelineEntry.patient_id, func.count())
        .where(
            among, access.clinical_clause(actor, TimelineEntry.patient_id, TimelineEntry.category),
            TimelineEntry.is_head.is_(True), TimelineEntry.status == EntryStatus.final,
            TimelineEntry.author_id != actor.user_id, ~_read_by(actor),
        )
        .group_by(TimelineEntry.patient_id)
    ).all()
    counts.update({pid: n for pid, n in rows})
    if patient_ids is None:
        access.record_counted(session, actor, Action.read_clinical, counts)
    return counts


def listed_unread_counts(
    session: Session, actor: Actor, patient_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The patient list's unread counts (a `patients.service.UnreadCounter`, wired in by the app)."""
    return unread_counts(session, actor=actor, patient_ids=patient_ids)


def summary(
    session: Session, *, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
) -> SummaryOut:
    """The current status card: ACP, emergency information, allergies, medication, contacts, key person."""
    decision = guard.require(session, actor, Action.read_emergency, patient_id, category=None)
    emergency = _latest(session, patient_id, "emergency-info") if decision.covers("emergency") else None
    record = views.current_acp_record(session, patient_id) if decision.covers("acp") else None
    acp_row = _head_of(session, record) if record else None
    access.disclosed(decision, [row.id for row in (emergency, acp_row) if row is not None])
    # The key person is on the admission sheet, outside the emergency scope: shown only to readers of it.
    admission = None
    if access.can(session, actor, Action.read_clinical, patient_id, category="admission"):
        admission = _latest(session, patient_id, "admission-info")
        if admission is not None:
            guard.require(session, actor, Action.read_clinical, patient_id, category="admission",
                          sheet_id="admission-info", targets=[admission.id])
    unseal = views.Unsealer(session, keyring)
    em = unseal(emergency, views.PAYLOAD_AAD, emergency.payload_ct) if emergency else {}
    ad = unseal(admission, views.PAYLOAD_AAD, admission.payload_ct) if admission else {}
    # The DNAR wish on the emergency sheet is ACP information: withheld where the consent leaves ACP out.
    sheets = views.registry(settings)
    withheld: list[str] = []
    if emergency:
        em, hidden = subtrees.withhold(em, views.withheld_subtrees(
            sheets, emergency.sheet_id, emergency.sheet_version, decision.categories))
        withheld += [f"/emergency{pointer}" for pointer in hidden]
        if "/resuscitation" in hidden:
            withheld.insert(0, "/resuscitation_wish")
    acp = _acp_summary(session, keyring, acp_row) if acp_row else None
    wish = (em.get("resuscitation") or {}).get("wish")
    cpr = acp.cpr if acp else None
    contacts = em.get("contacts") or {}
    physician = contacts.get("attending_physician") or {}
    key_person = (ad.get("family") or {}).get("key_person")
    shown: dict[str, datetime | None] = {}
    if decision.covers("emergency"):
        shown["emergency-info"] = emergency.record_posted_at if emergency else None
    if decision.covers("acp"):
        shown["acp"] = acp_row.record_posted_at if acp_row else None
    awaiting = [PaperAwaiting(entry_id=i, sheet=s, posted_at=at)
                for i, s, at in paper.awaiting_after(session, patient_id, shown)]
    return SummaryOut(
        patient_id=patient_id, acp=acp,
        emergency=EmergencySummary(
            entry_id=emergency.id, posted_at=emergency.posted_at, resuscitation=em.get("resuscitation") or {},
            infections=em.get("infections"), blood_type=(em.get("profile") or {}).get("blood_type"),
            medication_notebook_attachment_ids=em.get("medication_notebook_attachment_ids") or [],
        ) if emergency else None,
        resuscitation_wish=wish,
        resuscitation_conflict=(wish, cpr) in (("dnar", "want"), ("full_treatment", "refuse")),
        allergies=em.get("allergies") or [], medications=em.get("medications") or [],
        attending_physician=AttendingPhysician(
            clinic=physician.get("clinic"), doctor=physician.get("doctor"),
            phone_24h=physician.get("phone_24h"),
            team_members=_attending_members(session, patient_id),
        ),
        emergency_contacts=em.get("emergency_contacts") or [],
        key_person=key_person, key_person_entry_id=admission.id if admission and key_person else None,
        paper_awaiting=awaiting, withheld=withheld,
    )


# -- cursor ----------------------------------------------------------------------------------


def encode_cursor(posted_at: datetime, record_id: uuid.UUID) -> str:
    """Opaque to clients: where the next page starts (position in the stable first-posted/record order)."""
    raw = json.dumps([posted_at.astimezone(UTC).isoformat(), str(record_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, record_id = json.loads(raw)
        posted_at = datetime.fromisoformat(stamp)
        if posted_at.tzinfo is None:
            raise ValueError("naive")
        return posted_at, uuid.UUID(record_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(fields=[FieldProblem("/query/cursor", "カーソルが正しくありません",
                                                "Invalid cursor")]) from None


# -- helpers ---------------------------------------------------------------------------------


def _read_by(actor: Actor) -> Any:
    return exists(select(EntryRead.entry_id).where(
        EntryRead.entry_id == TimelineEntry.id, EntryRead.user_id == actor.user_id))


def _jst_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JST).astimezone(UTC)


def _latest(session: Session, patient_id: uuid.UUID, sheet_id: str) -> TimelineEntry | None:
    return session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.patient_id == patient_id, TimelineEntry.sheet_id == sheet_id,
            TimelineEntry.is_head.is_(True), TimelineEntry.status == EntryStatus.final,
            paper.not_paper(),  # a paper form awaiting transcription holds no structured status
        # The most recently recorded sheet, as the timeline orders them (an amended older one stays older).
        ).order_by(TimelineEntry.record_posted_at.desc(), TimelineEntry.record_id.desc()).limit(1)
    ).first()


def _head_of(session: Session, record_id: uuid.UUID) -> TimelineEntry | None:
    return session.scalars(
        select(TimelineEntry).where(TimelineEntry.record_id == record_id, TimelineEntry.is_head.is_(True))
    ).first()


def _acp_summary(session: Session, keyring: Keyring, row: TimelineEntry) -> AcpSummary:
    data = views.unseal(session, keyring, row, views.PAYLOAD_AAD, row.payload_ct)
    preferences = data.get("treatment_preferences") or {}
    # Other ACP records still standing (their newest version final): an amendment is a version of a record,
    # not a superseded ACP, and an ACP marked entered in error never was one.
    superseded = session.scalar(
        select(func.count()).select_from(TimelineEntry).where(
            TimelineEntry.patient_id == row.patient_id, TimelineEntry.sheet_id == "acp",
            TimelineEntry.is_head.is_(True), TimelineEntry.status == EntryStatus.final,
            TimelineEntry.record_id != row.record_id, paper.not_paper(),
        )
    )
    return AcpSummary(
        entry_id=row.id, record_date=data.get("record_date"), decision_basis=data.get("decision_basis"),
        cpr=preferences.get("cpr"), place_of_care=data.get("place_of_care"),
        place_of_death=data.get("place_of_death"), treatment_preferences=preferences,
        next_review_date=data.get("next_review_date"), posted_at=row.posted_at,
        superseded_versions=superseded or 0,
    )


def _attending_members(session: Session, patient_id: uuid.UUID) -> list[str]:
    """Names of today's attending physicians on the team (staff names are directory data, not PHI)."""
    rows = session.execute(
        select(User.name, Organisation.name)
        .join(CareTeamMembership, CareTeamMembership.user_id == User.id)
        .join(Organisation, Organisation.id == CareTeamMembership.organisation_id)
        .where(CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None),
               CareTeamMembership.start_date <= today_jst(),
               CareTeamMembership.team_role == TeamRole.attending_physician)
    ).all()
    return [f"{name}（{org}）" for name, org in rows]
