"""Patient registration, encrypted identity, blind-index lookup and care-team membership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.crypto import blind_index
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, User
from renkei.errors import Conflict, FieldProblem, InvalidInput, NotFound
from renkei.patients import keys
from renkei.patients.models import CareTeamMembership, Patient, PatientIndex
from renkei.patients.schemas import LookupIn, MembershipEnd, MembershipIn, PatientCreate, PatientIdentity

IDENTITY_AAD = "patient.identity_ct"


@dataclass(frozen=True)
class PatientView:
    id: uuid.UUID
    identity: PatientIdentity
    created_at: object
    my_team_role: str | None = None
    unread_count: int = 0

    @property
    def age(self) -> int:
        return age_on(self.identity.birth_date, date.today())


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
        team_role=data.team_role.value, start_date=date.today(), added_by=actor.user_id,
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


def list_mine(session: Session, *, keyring: Keyring, actor: Actor) -> list[PatientView]:
    """Patients whose team I am on today and whose consent covers me; narrowed in SQL, decrypted after."""
    rows = session.execute(
        select(Patient, CareTeamMembership.team_role)
        .join(CareTeamMembership, CareTeamMembership.patient_id == Patient.id)
        .where(
            CareTeamMembership.user_id == actor.user_id,
            CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.start_date <= date.today(),
            access.patients_clause(actor, Patient.id),
        )
    ).all()
    access.record_listed(session, actor, Action.read_registration, [p.id for p, _ in rows])
    views = [PatientView(p.id, decrypt_identity(session, keyring, p), p.created_at, role) for p, role in rows]
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
        "end_date": m.end_date, "active": m.ended_at is None and m.start_date <= date.today(),
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


def add_member(session: Session, *, actor: Actor, patient_id: uuid.UUID, data: MembershipIn) -> dict:
    """Add a professional to the team (any active team member may)."""
    decision = access.require(session, actor, Action.manage_team, patient_id, event="team.add")
    user = session.get(User, data.user_id)
    if user is None or not user.active:
        raise InvalidInput(fields=[FieldProblem("/user_id", "該当する職員がいません", "No such active professional")])
    existing = session.scalars(
        select(CareTeamMembership).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.user_id == user.id,
            CareTeamMembership.team_role == data.team_role.value, CareTeamMembership.ended_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise Conflict("This professional already has this role on the team")
    start = data.start_date or date.today()
    m = CareTeamMembership(patient_id=patient_id, user_id=user.id, organisation_id=user.organisation_id,
                           team_role=data.team_role.value, start_date=start, added_by=actor.user_id)
    session.add(m)
    session.flush()
    access.disclosed(decision, [m.id])
    return _membership_out(session, m)


def end_member(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, membership_id: uuid.UUID, data: MembershipEnd
) -> dict:
    """End a membership now; the row stays as history."""
    access.require(session, actor, Action.manage_team, patient_id, targets=[membership_id], event="team.end")
    m = session.get(CareTeamMembership, membership_id)
    if m is None or m.patient_id != patient_id:
        raise NotFound()
    if m.ended_at is not None:
        raise Conflict("This membership has already ended")
    end = data.end_date or date.today()
    if end < m.start_date or end > date.today():
        raise InvalidInput(fields=[FieldProblem("/end_date", "終了日が正しくありません",
                                                "End date must be between the start date and today")])
    m.end_date, m.ended_at, m.ended_by, m.end_reason = end, utcnow(), actor.user_id, data.reason
    session.flush()
    return _membership_out(session, m)


def lookup_for(session: Session, *, keyring: Keyring, actor: Actor, data: LookupIn) -> list[dict]:
    """Lookup result for an actor: just enough to confirm identity before requesting access (audited)."""
    out = []
    found = lookup(session, keyring=keyring, data=data)
    access.record_lookup(session, actor, found)
    for pid in found:
        patient = session.get(Patient, pid)
        assert patient is not None
        ident = decrypt_identity(session, keyring, patient)
        out.append({"id": pid, "name": ident.name, "name_kana": ident.name_kana, "birth_date": ident.birth_date,
                    "sex": ident.sex.value, "on_my_team": access.active_membership(session, actor, pid) is not None})
    return out
