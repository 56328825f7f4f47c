"""The one access decision point. Every read or write of patient data asks `can` (or `require`).

A decision needs an active care-team membership, the patient's current consent covering the
member's organisation and the data category, and a profession allowed for the sheet being written
(SHEETS.md "Who may write what"); or, failing those, an active break-the-glass grant for the
emergency scope, read-only and to the current versions only. Deny by default. `require` also queues
the audit row, allow or deny.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, literal, not_, or_, select, true
from sqlalchemy.orm import Session, aliased

from renkei.access.models import BreakGlassGrant
from renkei.audit import service as audit
from renkei.audit.service import PendingEvent
from renkei.auth.service import Actor
from renkei.consent.models import CATEGORIES, Consent, ConsentOrganisation, ConsentScope
from renkei.db.session import cached
from renkei.db.types import today_jst, utcnow
from renkei.directory.models import Profession
from renkei.errors import NotFound
from renkei.patients.models import CareTeamMembership, Patient


class Action(StrEnum):
    read_registration = "read_registration"  # identity header, team list: what consent recording needs
    update_registration = "update_registration"
    manage_team = "manage_team"
    read_clinical = "read_clinical"
    write_clinical = "write_clinical"
    read_emergency = "read_emergency"  # the summary: emergency sheet, ACP/DNAR, allergies, medication
    read_consent = "read_consent"
    manage_consent = "manage_consent"
    read_access_log = "read_access_log"
    print = "print"
    export = "export"
    # Audit-only actions: recorded, never decided by `can`.
    lookup = "lookup"
    break_glass = "break_glass"
    break_glass_review = "break_glass_review"


AUDIT_ONLY = frozenset({Action.lookup, Action.break_glass, Action.break_glass_review})
# What the registering professional may still do while no consent is in force, so one can be recorded.
REGISTRAR_ACTIONS = frozenset({
    Action.read_registration, Action.update_registration, Action.manage_team, Action.read_consent,
    Action.manage_consent, Action.read_access_log,
})
# While no consent is in force (withdrawn, expired, not yet recorded), the team's physicians and care managers
# (who record consent, issue 3) may reach the registration and consent pages to record a new one.
CONSENT_RENEWERS = frozenset({Profession.physician, Profession.care_manager})
RENEWER_ACTIONS = frozenset({Action.read_registration, Action.read_consent, Action.manage_consent})
CLINICAL_READS = frozenset({Action.read_clinical, Action.read_emergency, Action.print, Action.export})
BREAK_GLASS_ACTIONS = frozenset({Action.read_clinical, Action.read_emergency, Action.print})
EMERGENCY_SCOPE: frozenset[str] = frozenset({"emergency", "acp"})
BREAK_GLASS_PROFESSIONS = frozenset({Profession.physician, Profession.nurse})
# Who may record a new version or a withdrawal while a consent is in force: the renewers; visiting nurses,
# who see the patient at home most often and must be able to record a withdrawal told to them at once;
# and the hospital's discharge coordinator (msw), who obtains the consent to share at discharge.
CONSENT_RECORDERS = CONSENT_RENEWERS | {Profession.nurse, Profession.msw}
_P = Profession
# SHEETS.md "Who may write what"; msw is the hospital discharge coordinator.
WRITE_MATRIX: dict[str, frozenset[str]] = {
    "admission-info": frozenset({_P.care_manager}),
    "discharge-info": frozenset({_P.physician, _P.nurse, _P.care_manager, _P.msw}),
    "emergency-info": frozenset({_P.physician, _P.nurse, _P.care_manager, _P.dentist}),
    "acp": frozenset({_P.physician, _P.nurse, _P.care_manager, _P.msw}),
    "physician-visit": frozenset({_P.physician, _P.dentist}),
    "care-note": frozenset({_P.physician, _P.nurse, _P.pharmacist, _P.care_manager, _P.therapist,
                            _P.care_worker, _P.dentist, _P.dietitian}),
    "message": frozenset({_P.physician, _P.nurse, _P.pharmacist, _P.care_manager, _P.msw, _P.therapist,
                          _P.care_worker, _P.dentist, _P.dietitian}),
}
# Coverage failures that mean "no consent in force" (as opposed to "the consent leaves you out").
NO_CONSENT_IN_FORCE = frozenset({
    "no_consent", "consent_withdrawn", "consent_expired", "consent_not_yet_valid",
})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    membership_id: uuid.UUID | None = None
    consent_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    # Categories the actor may read; callers narrow entry lists with `category_clause`.
    categories: frozenset[str] = frozenset()
    read_only: bool = False
    # A break-the-glass grant reads the current emergency sheet and ACP only: lists narrow to those
    # (the timeline knows which entries they are), single reads pass `current=True` to `can`.
    current_only: bool = False
    audit: PendingEvent | None = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return self.allowed

    def covers(self, category: str) -> bool:
        return self.allowed and category in self.categories


def today() -> date:
    return today_jst()


# -- facts the decision is made from ---------------------------------------------------------


def active_membership_clause(actor: Actor, patient_id_col: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """SQL condition: the actor is on the patient's care team today (membership only, no consent)."""
    return exists(
        select(CareTeamMembership.id).where(
            CareTeamMembership.patient_id == patient_id_col,
            CareTeamMembership.user_id == actor.user_id,
            CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.start_date <= today(),
        )
    )


def active_membership(session: Session, actor: Actor, patient_id: uuid.UUID) -> CareTeamMembership | None:
    return session.scalars(
        select(CareTeamMembership).where(
            and_(
                CareTeamMembership.patient_id == patient_id,
                CareTeamMembership.user_id == actor.user_id,
                CareTeamMembership.ended_at.is_(None),
                CareTeamMembership.start_date <= today(),
            )
        )
    ).first()


def current_consent(session: Session, patient_id: uuid.UUID) -> Consent | None:
    """The newest consent version (withdrawn or not); older versions are superseded."""
    return session.scalars(
        select(Consent).where(Consent.patient_id == patient_id, Consent.superseded_at.is_(None))
    ).first()


def excluded_categories(consent: Consent | _ConsentFacts) -> frozenset[str]:
    return frozenset(c for c in consent.excluded_categories.split(",") if c)


def consent_state(consent: Consent | _ConsentFacts | None, on: date) -> str | None:
    """None when the consent is in force on that day, else why not."""
    if consent is None:
        return "no_consent"
    if consent.withdrawn_at is not None:
        return "consent_withdrawn"
    if consent.valid_from > on:
        return "consent_not_yet_valid"
    if consent.valid_until is not None and consent.valid_until < on:
        return "consent_expired"
    return None


def consent_coverage(session: Session, consent: Consent | None, organisation_id: uuid.UUID) -> str | None:
    """None when the consent in force covers the organisation, else the reason code."""
    if consent is None or consent_state(consent, today()) is not None:
        return _coverage(consent, listed=False)
    listed = session.scalar(
        select(ConsentOrganisation.organisation_id).where(
            ConsentOrganisation.consent_id == consent.id,
            ConsentOrganisation.organisation_id == organisation_id,
        )
    ) is not None
    return _coverage(consent, listed=listed)


def _coverage(consent: Consent | _ConsentFacts | None, *, listed: bool) -> str | None:
    # `consent`: a Consent or the consent columns of the facts row; `listed`: its organisation list names
    # the member's organisation.
    state = consent_state(consent, today())
    if state is not None or consent is None:
        return state or "no_consent"
    if consent.scope == ConsentScope.blanket and listed:
        return "organisation_excluded"
    if consent.scope == ConsentScope.individual and not listed:
        return "organisation_not_included"
    return None


def active_grant(session: Session, actor: Actor, patient_id: uuid.UUID) -> BreakGlassGrant | None:
    return session.scalars(
        select(BreakGlassGrant).where(
            BreakGlassGrant.user_id == actor.user_id, BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.expires_at > utcnow(),
        ).order_by(BreakGlassGrant.expires_at.desc())
    ).first()


# The facts `can` decides from, in one round trip: the patient, the actor's active membership, the newest
# consent version and whether its organisation list names the member's organisation. Same rules as
# `active_membership`, `current_consent` and `consent_coverage` above; built once, run on every request.
_p = Patient.__table__  # type: ignore[attr-defined]
_m = CareTeamMembership.__table__  # type: ignore[attr-defined]
_c = Consent.__table__  # type: ignore[attr-defined]
_co = ConsentOrganisation.__table__  # type: ignore[attr-defined]
_FACTS = (
    select(
        _p.c.id.label("patient_id"), _p.c.created_by, _m.c.id.label("membership_id"),
        _m.c.organisation_id, _c.c.id.label("consent_id"), _c.c.scope, _c.c.excluded_categories,
        _c.c.valid_from, _c.c.valid_until, _c.c.withdrawn_at,
        exists(select(_co.c.consent_id).where(_co.c.consent_id == _c.c.id,
                                              _co.c.organisation_id == _m.c.organisation_id)).label("listed"),
    )
    .select_from(
        _p.outerjoin(_m, and_(_m.c.patient_id == _p.c.id, _m.c.user_id == bindparam("user_id"),
                              _m.c.ended_at.is_(None), _m.c.start_date <= bindparam("on")))
        .outerjoin(_c, and_(_c.c.patient_id == _p.c.id, _c.c.superseded_at.is_(None)))
    )
    .where(_p.c.id == bindparam("patient_id"))
    .limit(1)
)


@dataclass(frozen=True)
class _ConsentFacts:
    id: uuid.UUID
    scope: str
    excluded_categories: str
    valid_from: date
    valid_until: date | None
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class _Facts:
    patient_id: uuid.UUID
    created_by: uuid.UUID
    membership_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    consent: _ConsentFacts | None
    listed: bool


_FACT_TABLES = frozenset({_p.name, _m.name, _c.name, _co.name})


def _facts(session: Session, actor: Actor, patient_id: uuid.UUID) -> _Facts | None:
    # Read once per transaction (a request often decides twice, e.g. an idempotent post), and again as soon
    # as the transaction changes the patient, its team or its consent, or rolls back.
    on = today()
    row = cached(session, "access.facts", (actor.user_id, patient_id, on), tables=_FACT_TABLES,
                 load=lambda: session.execute(
                     _FACTS, {"patient_id": patient_id, "user_id": actor.user_id, "on": on}).first())
    if row is None:
        return None
    consent = None if row.consent_id is None else _ConsentFacts(
        row.consent_id, row.scope, row.excluded_categories, row.valid_from, row.valid_until, row.withdrawn_at)
    return _Facts(row.patient_id, row.created_by, row.membership_id, row.organisation_id, consent,
                  bool(row.listed))


# -- the decision ------------------------------------------------------------------------------


def _team_decision(
    actor: Actor, action: Action, facts: _Facts, category: str | None, sheet_id: str | None,
) -> Decision:
    consent = facts.consent
    uncovered = _coverage(consent, listed=facts.listed)
    is_registrar = facts.created_by == actor.user_id
    if uncovered is not None:
        ids = {"membership_id": facts.membership_id, "consent_id": consent.id if consent else None}
        if uncovered in NO_CONSENT_IN_FORCE:
            if action in REGISTRAR_ACTIONS and is_registrar:
                return Decision(True, "registrar_before_consent", **ids)
            if action in RENEWER_ACTIONS and actor.profession in CONSENT_RENEWERS:
                return Decision(True, "recorder_before_consent", **ids)
        return Decision(False, uncovered, **ids)
    assert consent is not None
    readable = CATEGORIES - excluded_categories(consent)
    ids = {"membership_id": facts.membership_id, "consent_id": consent.id}
    if action == Action.read_emergency:
        readable = readable & EMERGENCY_SCOPE
        if not readable:
            return Decision(False, "category_excluded", **ids)
    if action in CLINICAL_READS and category is not None and category not in readable:
        return Decision(False, "category_excluded", **ids)
    if action == Action.write_clinical:
        if not sheet_id or not category:
            return Decision(False, "sheet_required", **ids)
        if category not in readable:
            return Decision(False, "category_excluded", **ids)
        if actor.profession not in WRITE_MATRIX.get(sheet_id, frozenset()):
            return Decision(False, "profession_not_allowed", **ids)
    if action == Action.manage_consent and actor.profession not in CONSENT_RECORDERS and not is_registrar:
        return Decision(False, "profession_not_allowed", **ids)
    return Decision(True, "team_consent", categories=readable, **ids)


def _grant_decision(grant: BreakGlassGrant, action: Action, category: str | None, current: bool) -> Decision:
    outside = action not in BREAK_GLASS_ACTIONS or (category is not None and category not in EMERGENCY_SCOPE)
    # One entry (or its attachment, or its history) read on its own must be a current emergency sheet or ACP.
    if outside or (action == Action.read_clinical and category is not None and not current):
        return Decision(False, "outside_break_glass_scope", grant_id=grant.id)
    return Decision(True, "break_glass", grant_id=grant.id, categories=EMERGENCY_SCOPE, read_only=True,
                    current_only=True)


def can(
    session: Session, actor: Actor, action: Action, patient_id: uuid.UUID, *, category: str | None = None,
    sheet_id: str | None = None, targets: Sequence[uuid.UUID] = (), current: bool = False,
) -> Decision:
    """Decide; deny by default. Does not audit (websocket filtering asks this many times).

    `targets` is accepted so that `can` and `require` take the same arguments; it does not change
    the decision, which is about the patient, the category and the sheet. `current`: the one entry read is
    the patient's current emergency sheet or current ACP version (only the timeline can tell); without it a
    break-the-glass grant does not reach a single entry.
    """
    if action in AUDIT_ONLY:
        return Decision(False, "not_a_decision")
    facts = _facts(session, actor, patient_id)
    if facts is None:
        return Decision(False, "no_such_patient")
    on_team = facts.membership_id is not None
    decision = (
        _team_decision(actor, action, facts, category, sheet_id) if on_team
        else Decision(False, "not_on_team")
    )
    if decision.allowed:
        return decision
    grant = active_grant(session, actor, patient_id)
    if grant is None:
        return decision
    via_grant = _grant_decision(grant, action, category, current)
    # A team member keeps the team's reason for a denial (e.g. consent_withdrawn); the grant only adds.
    return via_grant if via_grant.allowed or not on_team else decision


def require(
    session: Session, actor: Actor, action: Action, patient_id: uuid.UUID, *, category: str | None = None,
    sheet_id: str | None = None, targets: Sequence[uuid.UUID] = (), event: str | None = None,
    current: bool = False,
) -> Decision:
    """`can`, audited; raises 404 on denial so that outsiders cannot learn that the patient exists.

    `targets` are the ids of the objects read or written (add more later with `disclosed`);
    `event` names what an allowed action did (e.g. "consent.withdraw") when the action alone is vague.
    """
    decision = can(session, actor, action, patient_id, category=category, sheet_id=sheet_id, current=current)
    row = audit.record(
        session, actor=actor, action=action.value, allowed=decision.allowed, reason=decision.reason,
        patient_id=patient_id, targets=targets, category=category, sheet_id=sheet_id,
        consent_id=decision.consent_id, grant_id=decision.grant_id, event=event,
    )
    if not decision.allowed:
        raise NotFound()
    return replace(decision, audit=row)


def disclosed(decision: Decision, ids: Iterable[uuid.UUID]) -> None:
    """Add the ids a list read returned (or a write created) to the decision's audit row."""
    if decision.audit is not None:
        decision.audit.add_targets(ids)


# -- narrowing lists in SQL --------------------------------------------------------------------


def category_values(decision: Decision) -> list[str]:
    """The entry categories of one patient that the decision lets the actor read (none when refused)."""
    return sorted(decision.categories) if decision.allowed else []


def category_clause(decision: Decision, category_col: ColumnElement[str]) -> ColumnElement[bool]:
    """Entries of one patient that the decision lets the actor read."""
    categories = category_values(decision)
    return category_col.in_(categories) if categories else false()


def _consent_in_force(
    patient_id_col: ColumnElement[uuid.UUID], on: date,
) -> tuple[type[Consent], ColumnElement[bool]]:
    c = aliased(Consent)
    return c, and_(  # type: ignore[return-value]
        c.patient_id == patient_id_col, c.superseded_at.is_(None), c.withdrawn_at.is_(None),
        c.valid_from <= on, or_(c.valid_until.is_(None), c.valid_until >= on),
    )


def _covers_clause(
    patient_id_col: ColumnElement[uuid.UUID], organisation_id_col: ColumnElement[uuid.UUID],
    category_col: ColumnElement[str] | None, on: date,
) -> ColumnElement[bool]:
    c, in_force = _consent_in_force(patient_id_col, on)
    co = aliased(ConsentOrganisation)
    # Nested EXISTS: correlate explicitly, auto-correlation only reaches the immediately enclosing SELECT.
    listed = exists(select(co.consent_id)
                    .where(co.consent_id == c.id, co.organisation_id == organisation_id_col)
                    .correlate_except(co))
    conditions = [in_force, or_(and_(c.scope == ConsentScope.blanket.value, not_(listed)),
                                and_(c.scope == ConsentScope.individual.value, listed))]
    if category_col is not None:
        # excluded_categories is a comma list of codes without LIKE wildcards.
        conditions.append(not_((literal(",") + c.excluded_categories + literal(",")).like(
            literal("%,") + category_col + literal(",%"))))
    return exists(select(c.id).where(*conditions).correlate_except(c))


def patients_clause(actor: Actor, patient_id_col: ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """Patients the actor may see listed: on the team today, and covered by the consent in force
    (or, while no consent is in force, the registrar and the team's consent renewers).
    Same rule as `can(read_registration)`."""
    on = today()
    m = aliased(CareTeamMembership)
    p = aliased(Patient)
    c, in_force = _consent_in_force(patient_id_col, on)
    may_renew = (true() if actor.profession in CONSENT_RENEWERS else
                 exists(select(p.id).where(p.id == patient_id_col, p.created_by == actor.user_id)
                        .correlate_except(p)))
    renewer_without_consent = and_(may_renew, not_(exists(select(c.id).where(in_force).correlate_except(c))))
    return exists(select(m.id).where(
        m.patient_id == patient_id_col, m.user_id == actor.user_id, m.ended_at.is_(None), m.start_date <= on,
        or_(_covers_clause(patient_id_col, m.organisation_id, None, on), renewer_without_consent),
    ).correlate_except(m))


def clinical_clause(
    actor: Actor, patient_id_col: ColumnElement[uuid.UUID], category_col: ColumnElement[str],
) -> ColumnElement[bool]:
    """Entries across patients the actor may read as a team member (counts, inboxes): membership,
    consent covering the organisation, category not excluded. Break-glass grants are per patient
    and are not widened to lists."""
    on = today()
    m = aliased(CareTeamMembership)
    return exists(select(m.id).where(
        m.patient_id == patient_id_col, m.user_id == actor.user_id, m.ended_at.is_(None), m.start_date <= on,
        _covers_clause(patient_id_col, m.organisation_id, category_col, on),
    ).correlate_except(m))


def record_listed(session: Session, actor: Actor, action: Action, patient_ids: Iterable[uuid.UUID]) -> None:
    """Audit a list that disclosed several patients: one allowed row per patient."""
    for patient_id in patient_ids:
        audit.record(session, actor=actor, action=action.value, allowed=True, reason="listed",
                     patient_id=patient_id)


def record_counted(session: Session, actor: Actor, action: Action, patient_ids: Iterable[uuid.UUID]) -> None:
    """Audit a read that disclosed a figure per patient (unread counts): one row naming every patient, as
    such reads are polled and tell no more than the patient list already does."""
    patient_ids = list(patient_ids)
    if patient_ids:
        audit.record(session, actor=actor, action=action.value, allowed=True, reason="counted",
                     targets=patient_ids)
