"""Patient registration, encrypted identity, blind-index lookup and care-team membership."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access import lookup as access_lookup
from renkei.access import service as access
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth import throttle as auth_throttle
from renkei.auth.service import Actor
from renkei.crypto import blind_index
from renkei.crypto.keyring import Keyring
from renkei.db.locking import get_locked
from renkei.db.types import today_jst, utcnow
from renkei.directory.models import Organisation, Profession, Role, User
from renkei.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, TooManyAttempts
from renkei.patients import keys, locks
from renkei.patients.models import CareTeamMembership, Patient, PatientIndex, TeamRole
from renkei.patients.schemas import LookupIn, MembershipEnd, MembershipIn, PatientCreate, PatientIdentity

IDENTITY_AAD = "patient.identity_ct"
# An emergency physician or a registering professional looks up a handful of people an hour; sweeping
# insurance numbers takes thousands of guesses. Counted per account and per client address.
LOOKUP_WINDOW = timedelta(minutes=15)
LOOKUP_LIMIT_PER_USER = 20
LOOKUP_LIMIT_PER_ADDRESS = 100
# Ending someone else's membership: the team's attending physician or care manager (or the registrar).
TEAM_LEAD_ROLES = (TeamRole.attending_physician.value, TeamRole.care_manager.value)
# A membership may be back-dated to when someone actually began (the nurse who started visiting last month),
# but not past a year: further back it records care that was never shared here. It may be arranged ahead of
# time (discharge planning sets up the visiting nurse), but not beyond 90 days: plans that far out change.
MAX_BACKDATE = timedelta(days=365)
MAX_AHEAD = timedelta(days=90)
# Care-team changes of this transaction: a pre-commit hook (renkei.notify) turns them into events and inbox
# rows. A key, not a call, because patients must not depend on notify.
TEAM_CHANGES_KEY = "patients.team_changes"
# Unread entries per listed patient, counted by the timeline (which patients may not import): passed in.
UnreadCounter = Callable[[Session, Actor, Sequence[uuid.UUID]], Mapping[uuid.UUID, int]]
_ROLE_ORDER = {role.value: i for i, role in enumerate(TeamRole)}


@dataclass(frozen=True)
class PatientView:
    id: uuid.UUID
    identity: PatientIdentity
    created_at: object
    my_team_role: str | None = None
    unread_count: int = 0
    my_team_roles: tuple[str, ...] = ()

    @property
    def age(self) -> int:
        return age_on(self.identity.birth_date, today_jst())


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _binding(patient_id: uuid.UUID) -> str:
    return f"patient:{patient_id}"


def _index_rows(keyring: Keyring, patient_id: uuid.UUID, identity: PatientIdentity) -> list[PatientIndex]:
    rows = [
        PatientIndex(
            patient_id=patient_id, kind="kana_birth",
            digest=keyring.blind_index(
                "kana_birth", blind_index.normalise_kana(identity.name_kana) + "|" + identity.birth_date.isoformat()
            ),
        )
    ]
    for number in (identity.care_insurance_number, identity.health_insurance_number):
        if number:
            rows.append(PatientIndex(patient_id=patient_id, kind="insurance",
                                     digest=keyring.blind_index("insurance", blind_index.normalise_number(number))))
    return rows


def decrypt_identity(session: Session, keyring: Keyring, patient: Patient) -> PatientIdentity:
    data = keys.open_json(session, keyring, patient.id, patient.identity_ct, aad=IDENTITY_AAD,
                          binding=_binding(patient.id))
    return PatientIdentity.model_validate(data)


def _seal_identity(session: Session, keyring: Keyring, patient_id: uuid.UUID, identity: PatientIdentity) -> bytes:
    return keys.seal_json(session, keyring, patient_id, aad=IDENTITY_AAD, binding=_binding(patient_id),
                          value=identity.model_dump(mode="json"))


def register(session: Session, *, keyring: Keyring, actor: Actor, data: PatientCreate) -> PatientView:
    """Register a patient; the registering professional becomes the first care-team member."""
    if not may_register(actor):
        raise Forbidden("Municipal coordinators and region administrators do not register patients "
                        "(連携コーディネーター・地域管理者は患者を登録できません)")
    identity = PatientIdentity.model_validate(data.model_dump(exclude={"team_role"}))
    patient_id = uuid.uuid4()
    keys.create_data_key(session, keyring, patient_id)
    patient = Patient(id=patient_id, identity_ct=b"", created_by=actor.user_id)
    session.add(patient)
    session.flush()
    patient.identity_ct = _seal_identity(session, keyring, patient_id, identity)
    session.add_all(_index_rows(keyring, patient_id, identity))
    session.add(CareTeamMembership(
        patient_id=patient_id, user_id=actor.user_id, organisation_id=actor.organisation_id,
        team_role=data.team_role.value, start_date=today_jst(), added_by=actor.user_id,
    ))
    session.flush()
    audit.record(session, actor=actor, action=Action.update_registration.value, allowed=True,
                 reason="registered", patient_id=patient_id, event="patient.register")
    return PatientView(patient.id, identity, patient.created_at, data.team_role.value)


def get(session: Session, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID) -> PatientView:
    """One patient's registration, for team members."""
    decision = access.require(session, actor, Action.read_registration, patient_id)
    patient = session.get(Patient, patient_id)
    assert patient is not None
    membership = session.get(CareTeamMembership, decision.membership_id) if decision.membership_id else None
    return PatientView(patient.id, decrypt_identity(session, keyring, patient), patient.created_at,
                       membership.team_role if membership else None)


def update_identity(
    session: Session, *, keyring: Keyring, actor: Actor, patient_id: uuid.UUID, data: PatientIdentity
) -> PatientView:
    """Replace the registration details (re-encrypted, indexes rebuilt)."""
    access.require(session, actor, Action.update_registration, patient_id, event="patient.update")
    patient = session.get(Patient, patient_id)
    assert patient is not None
    patient.identity_ct = _seal_identity(session, keyring, patient_id, data)
    patient.updated_at = utcnow()
    for row in session.scalars(select(PatientIndex).where(PatientIndex.patient_id == patient_id)):
        session.delete(row)
    session.add_all(_index_rows(keyring, patient_id, data))
    session.flush()
    return PatientView(patient.id, data, patient.created_at)


def list_mine(
    session: Session, *, keyring: Keyring, actor: Actor, unread: UnreadCounter | None = None
) -> list[PatientView]:
    """Patients whose team I am on today and whose consent covers me, each once with all my roles on the team
    (the first in TeamRole order shown as mine) and, given `unread`, its unread count."""
    rows = session.execute(
        select(Patient, CareTeamMembership.team_role)
        .join(CareTeamMembership, CareTeamMembership.patient_id == Patient.id)
        .where(
            CareTeamMembership.user_id == actor.user_id,
            CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.start_date <= today_jst(),
            access.patients_clause(actor, Patient.id),
        )
    ).all()
    patients: dict[uuid.UUID, Patient] = {}
    roles: dict[uuid.UUID, set[str]] = {}
    for patient, role in rows:
        patients.setdefault(patient.id, patient)
        roles.setdefault(patient.id, set()).add(role)
    access.record_listed(session, actor, Action.read_registration, list(patients))
    counts = unread(session, actor, list(patients)) if unread and patients else {}
    views = []
    for p in patients.values():
        mine = tuple(sorted(roles[p.id], key=lambda r: _ROLE_ORDER.get(r, len(_ROLE_ORDER))))
        views.append(PatientView(p.id, decrypt_identity(session, keyring, p), p.created_at, mine[0],
                                 unread_count=counts.get(p.id, 0), my_team_roles=mine))
    views.sort(key=lambda v: v.identity.name_kana)
    return views


def lookup(session: Session, *, keyring: Keyring, data: LookupIn) -> list[uuid.UUID]:
    """Exact match through blind indexes; callers decide what the actor may see of the result."""
    problems = data.problems()
    if problems:
        raise InvalidInput(fields=problems)
    if data.insurance_number:
        digest = keyring.blind_index("insurance", blind_index.normalise_number(data.insurance_number))
        kind = "insurance"
    else:
        assert data.name_kana and data.birth_date
        digest = keyring.blind_index(
            "kana_birth", blind_index.normalise_kana(data.name_kana) + "|" + data.birth_date.isoformat()
        )
        kind = "kana_birth"
    ids = session.scalars(
        select(PatientIndex.patient_id).where(PatientIndex.kind == kind, PatientIndex.digest == digest).distinct()
    )
    return list(ids)


# -- care team -----------------------------------------------------------------------------


def _membership_out(session: Session, m: CareTeamMembership) -> dict[str, object]:
    user = session.get(User, m.user_id)
    org = session.get(Organisation, m.organisation_id)
    return {
        "id": m.id, "patient_id": m.patient_id, "user_id": m.user_id, "user_name": user.name if user else "",
        "profession": user.profession if user else "", "organisation_id": m.organisation_id,
        "organisation_name": org.name if org else "", "team_role": m.team_role, "start_date": m.start_date,
        "end_date": m.end_date, "active": m.ended_at is None and m.start_date <= today_jst(),
        "cancelled": m.ended_at is not None and m.end_date is None,
        "added_by": m.added_by, "created_at": m.created_at, "ended_at": m.ended_at, "end_reason": m.end_reason,
    }


def list_team(session: Session, *, actor: Actor, patient_id: uuid.UUID, include_ended: bool = True) -> list[dict]:
    """The care team with its history (ended memberships kept)."""
    access.require(session, actor, Action.read_registration, patient_id)
    q = select(CareTeamMembership).where(CareTeamMembership.patient_id == patient_id)
    if not include_ended:
        q = q.where(CareTeamMembership.ended_at.is_(None))
    rows = session.scalars(q.order_by(CareTeamMembership.ended_at.is_not(None), CareTeamMembership.created_at))
    return [_membership_out(session, m) for m in rows]


def may_join_team(user: User | Actor) -> bool:
    """Whether a professional may be on a care team. Municipal coordinators work with aggregate figures and
    region administrators review everyone's access: neither may hold a membership that shows a patient."""
    return user.profession != Profession.coordinator and user.role != Role.region_admin


def may_register(actor: Actor) -> bool:
    """Registering makes the registrar the first member of the new team, so it takes one who may join."""
    return may_join_team(actor)


def add_member(session: Session, *, actor: Actor, patient_id: uuid.UUID, data: MembershipIn) -> dict:
    """Add a professional to the team (any active team member may)."""
    decision = access.require(session, actor, Action.manage_team, patient_id, event="team.add")
    user = session.get(User, data.user_id)
    if user is None or not user.active:
        raise InvalidInput(fields=[FieldProblem("/user_id", "該当する職員がいません", "No such active professional")])
    if not may_join_team(user):
        audit.record(session, actor=actor, action=Action.manage_team.value, allowed=False,
                     reason="member_not_eligible", patient_id=patient_id, targets=[user.id], event="team.add")
        raise InvalidInput(fields=[FieldProblem(
            "/user_id", "連携コーディネーターと地域管理者はケアチームに加えられません",
            "Municipal coordinators and region administrators cannot join a care team")])
    # Additions to one team take turns, so that two at once cannot both find the role free.
    locks.lock_patient(session, patient_id)
    existing = session.scalars(
        select(CareTeamMembership).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.user_id == user.id,
            CareTeamMembership.team_role == data.team_role.value, CareTeamMembership.ended_at.is_(None),
        )
    ).first()
    if existing is not None:
        # A retried request should carry an Idempotency-Key (its first answer is replayed); without one this
        # is a second, identical membership.
        raise Conflict("This professional already has this role on the team; end it first to change dates "
                       "(この職員はすでにこの役割でチームに参加しています)")
    start = data.start_date or today_jst()
    _check_start(start)
    m = CareTeamMembership(patient_id=patient_id, user_id=user.id, organisation_id=user.organisation_id,
                           team_role=data.team_role.value, start_date=start, added_by=actor.user_id)
    session.add(m)
    session.flush()
    access.disclosed(decision, [m.id])
    session.info.setdefault(TEAM_CHANGES_KEY, []).append(("team.member_added", m.id, actor.user_id))
    return _membership_out(session, m)


def end_member(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, membership_id: uuid.UUID, data: MembershipEnd
) -> dict:
    """End a membership now (cancel it if it has not started); the row stays as history. Members may end
    their own; ending someone else's needs the team's attending physician, a care manager on the team, or
    the registrar."""
    access.require(session, actor, Action.manage_team, patient_id, targets=[membership_id], event="team.end")
    # Locked and read as committed: of two requests ending one membership at once, the second is told it
    # has ended instead of overwriting the first's end date and reason.
    m = get_locked(session, CareTeamMembership, membership_id)
    if m is None or m.patient_id != patient_id:
        raise NotFound()
    if m.user_id != actor.user_id and not _leads_team(session, actor, patient_id):
        audit.record(session, actor=actor, action=Action.manage_team.value, allowed=False,
                     reason="not_team_lead", patient_id=patient_id, targets=[membership_id], event="team.end")
        raise Forbidden("Only the attending physician, the care manager or the registrar can end another "
                        "member's membership (他の職員の参加終了は主治医・ケアマネジャー・登録者が行います)")
    if m.ended_at is not None:
        raise Conflict("This membership has already ended")
    m.end_date = _end_date(m, data)
    m.ended_at, m.ended_by, m.end_reason = utcnow(), actor.user_id, data.reason
    session.flush()
    session.info.setdefault(TEAM_CHANGES_KEY, []).append(("team.member_ended", m.id, actor.user_id))
    return _membership_out(session, m)


def _check_start(start: date) -> None:
    today = today_jst()
    if start < today - MAX_BACKDATE:
        raise InvalidInput(fields=[FieldProblem(
            "/start_date", "開始日は1年前より前にはできません", "The start date cannot be more than a year ago")])
    if start > today + MAX_AHEAD:
        raise InvalidInput(fields=[FieldProblem(
            "/start_date", "開始日は90日後までにしてください", "The start date cannot be more than 90 days ahead")])


def _end_date(m: CareTeamMembership, data: MembershipEnd) -> date | None:
    """The membership's last day; None for a membership cancelled before it started (it never ran)."""
    today = today_jst()
    if m.start_date > today:
        if data.end_date is not None:
            raise InvalidInput(fields=[FieldProblem(
                "/end_date", "開始前の参加は取り消しになるため、終了日は指定できません",
                "A membership that has not started is cancelled; leave end_date out")])
        return None
    end = data.end_date or today
    if end < m.start_date or end > today:
        raise InvalidInput(fields=[FieldProblem("/end_date", "終了日は開始日から今日までの日付にしてください",
                                                "End date must be between the start date and today")])
    return end


def _leads_team(session: Session, actor: Actor, patient_id: uuid.UUID) -> bool:
    patient = session.get(Patient, patient_id)
    if patient is not None and patient.created_by == actor.user_id:
        return True
    return session.scalar(
        select(CareTeamMembership.id).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.user_id == actor.user_id,
            CareTeamMembership.ended_at.is_(None), CareTeamMembership.start_date <= today_jst(),
            CareTeamMembership.team_role.in_(TEAM_LEAD_ROLES),
        ).limit(1)
    ) is not None


def lookup_for(
    session: Session, *, keyring: Keyring, actor: Actor, client_ip: str, data: LookupIn,
) -> list[dict]:
    """Exact lookup for break-the-glass or a duplicate check before registering; limited, throttled, audited.

    Physicians and nurses, who may break the glass, get sex and age band to confirm whom they found; anyone
    else who may register patients gets only the id and whether the patient is on their team. Who is told of
    a match is access's rule (`renkei.access.lookup.decide`): a withheld match answers as if nobody matched.
    """
    confirms = access_lookup.may_break_glass(actor)
    if not (confirms or may_register(actor)):
        audit.record(session, actor=actor, action=Action.lookup.value, allowed=False,
                     reason="profession_not_allowed")
        raise Forbidden("Patient lookup is for physicians, nurses and professionals who register patients "
                        "(患者検索は医師・看護師と患者を登録する職員のみ)")
    problems = data.problems()
    if problems:
        raise InvalidInput(fields=problems)
    limits = {auth_throttle.throttle_key(keyring, "lookup-user", str(actor.user_id)): LOOKUP_LIMIT_PER_USER,
              auth_throttle.throttle_key(keyring, "lookup-ip", client_ip): LOOKUP_LIMIT_PER_ADDRESS}
    try:
        auth_throttle.count_use(session, limits=limits, window=LOOKUP_WINDOW)
    except TooManyAttempts:
        audit.record(session, actor=actor, action=Action.lookup.value, allowed=False,
                     reason="lookup_throttled")
        raise
    shown, withheld = [], []
    for pid in lookup(session, keyring=keyring, data=data):
        decision = access_lookup.decide(session, actor, pid)
        (shown if decision else withheld).append((pid, decision.membership_id is not None))
    access_lookup.record(session, actor, [pid for pid, _ in shown], [pid for pid, _ in withheld])
    return [_lookup_result(session, keyring, pid, on_team, confirms=confirms) for pid, on_team in shown]


def _lookup_result(
    session: Session, keyring: Keyring, patient_id: uuid.UUID, on_team: bool, *, confirms: bool,
) -> dict[str, object]:
    if not confirms:
        return {"id": patient_id, "on_my_team": on_team}
    patient = session.get(Patient, patient_id)
    assert patient is not None
    identity = decrypt_identity(session, keyring, patient)
    age = age_on(identity.birth_date, today_jst())
    return {"id": patient_id, "on_my_team": on_team, "sex": identity.sex.value,
            "age_band": min(age // 10 * 10, 100)}
