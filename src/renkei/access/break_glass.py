"""Break-the-glass (緊急時アクセス): request after an exact lookup and re-authentication; review queue."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.models import BreakGlassGrant
from renkei.access.schemas import BreakGlassIn, GrantOut, ReviewIn
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, Role, User
from renkei.errors import Conflict, Forbidden, NotFound
from renkei.notify import service as notify
from renkei.patients import keys
from renkei.patients.models import CareTeamMembership, Patient, TeamRole

REASON_AAD = "break_glass_grant.reason_ct"
NOTE_AAD = "break_glass_grant.review_note_ct"
NOTIFY_TEAM_ROLES = (TeamRole.attending_physician.value, TeamRole.care_manager.value)


def _binding(grant_id: uuid.UUID) -> str:
    return f"break_glass_grant:{grant_id}"


def _deny(session: Session, actor: Actor, patient_id: uuid.UUID, reason: str) -> None:
    audit.record(session, actor=actor, action=Action.break_glass.value, allowed=False, reason=reason,
                 patient_id=patient_id)


def _out(session: Session, keyring: Keyring, grant: BreakGlassGrant) -> GrantOut:
    user = session.get(User, grant.user_id)
    org = session.get(Organisation, grant.organisation_id)
    reviewer = session.get(User, grant.reviewed_by) if grant.reviewed_by else None
    binding = _binding(grant.id)
    reason = keys.open_json(session, keyring, grant.patient_id, grant.reason_ct, aad=REASON_AAD,
                            binding=binding)
    note = (keys.open_json(session, keyring, grant.patient_id, grant.review_note_ct, aad=NOTE_AAD,
                           binding=binding) if grant.review_note_ct else None)
    return GrantOut(
        id=grant.id, patient_id=grant.patient_id, user_id=grant.user_id, user_name=user.name if user else "",
        organisation_id=grant.organisation_id, organisation_name=org.name if org else "",
        profession=grant.profession, reason_code=grant.reason_code, reason=reason,
        scope=sorted(access.EMERGENCY_SCOPE), granted_at=grant.granted_at, expires_at=grant.expires_at,
        active=grant.expires_at > utcnow(), reviewed_at=grant.reviewed_at, reviewed_by=grant.reviewed_by,
        reviewer_name=reviewer.name if reviewer else None, disposition=grant.disposition, review_note=note,
    )


def _recipients(session: Session, actor: Actor, patient_id: uuid.UUID) -> list[uuid.UUID]:
    """The team's attending physician(s) and care manager(s), and the requester's organisation admins."""
    team = session.scalars(
        select(CareTeamMembership.user_id).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.ended_at.is_(None),
            CareTeamMembership.team_role.in_(NOTIFY_TEAM_ROLES),
        )
    )
    admins = session.scalars(
        select(User.id).where(User.organisation_id == actor.organisation_id,
                              User.role == Role.org_admin.value, User.active)
    )
    return [uid for uid in [*team, *admins] if uid != actor.user_id]


def request_grant(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    data: BreakGlassIn,
) -> GrantOut:
    """Grant read-only emergency access to one patient for `break_glass_minutes`.

    The requester must have found the patient by exact lookup shortly before (or be on the team),
    be a physician or nurse, lack access already, and re-enter the password (and TOTP if enrolled).
    """
    now = utcnow()
    patient = session.get(Patient, patient_id)
    on_team = access.active_membership(session, actor, patient_id) is not None
    looked_up = audit.has_recent(
        session, actor_user_id=actor.user_id, action=Action.lookup.value, patient_id=patient_id,
        since=now - timedelta(minutes=settings.break_glass_lookup_minutes),
    )
    if patient is None or not (on_team or looked_up):
        _deny(session, actor, patient_id, "no_such_patient" if patient is None else "no_prior_lookup")
        raise NotFound()
    if actor.profession not in access.BREAK_GLASS_PROFESSIONS:
        _deny(session, actor, patient_id, "profession_not_allowed")
        raise Forbidden("Only physicians and nurses may request emergency access (緊急時アクセスは医師・看護師のみ)")
    current = access.can(session, actor, Action.read_emergency, patient_id)
    if current.allowed:
        _deny(session, actor, patient_id, "grant_active" if current.grant_id else "already_has_access")
        raise Conflict("You already have access to this patient's emergency information")
    access.reauthenticate(session, settings=settings, keyring=keyring, actor=actor, password=data.password,
                          otp=data.otp, action=Action.break_glass, patient_id=patient_id)
    grant = BreakGlassGrant(
        id=uuid.uuid4(), patient_id=patient_id, user_id=actor.user_id, organisation_id=actor.organisation_id,
        profession=actor.profession, reason_code=data.reason_code.value, reason_ct=b"", granted_at=now,
        expires_at=now + timedelta(minutes=settings.break_glass_minutes),
    )
    grant.reason_ct = keys.seal_json(session, keyring, patient_id, aad=REASON_AAD, binding=_binding(grant.id),
                                     value=data.reason)
    session.add(grant)
    session.flush()
    audit.record(session, actor=actor, action=Action.break_glass.value, allowed=True,
                 reason=grant.reason_code, patient_id=patient_id, grant_id=grant.id,
                 event="break_glass.grant")
    notify.notify_users(session, user_ids=_recipients(session, actor, patient_id), kind="break_glass",
                        patient_id=patient_id, refs={"grant_id": grant.id}, urgent=True)
    return _out(session, keyring, grant)


def _reviewable(actor: Actor) -> Select[tuple[BreakGlassGrant]]:
    q = select(BreakGlassGrant)
    if not actor.is_region_admin:
        q = q.where(BreakGlassGrant.organisation_id == actor.organisation_id)
    return q


def review_queue(session: Session, *, keyring: Keyring, actor: Actor, pending_only: bool = True,
                 limit: int = 200) -> list[GrantOut]:
    """Grants awaiting review: an org admin sees their organisation's, a region admin everyone's."""
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    q = _reviewable(actor)
    if pending_only:
        q = q.where(BreakGlassGrant.reviewed_at.is_(None))
    grants = list(session.scalars(q.order_by(BreakGlassGrant.granted_at.desc()).limit(limit)))
    for grant in grants:
        # The queue shows each requester's free-text reason: that is a disclosure about the patient.
        audit.record(session, actor=actor, action=Action.break_glass_review.value, allowed=True,
                     reason="listed", patient_id=grant.patient_id, grant_id=grant.id)
    return [_out(session, keyring, g) for g in grants]


def review(
    session: Session, *, keyring: Keyring, actor: Actor, grant_id: uuid.UUID, data: ReviewIn,
) -> GrantOut:
    """Close a grant's review with a disposition; a grant is reviewed once."""
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    grant = session.scalars(_reviewable(actor).where(BreakGlassGrant.id == grant_id)).first()
    if grant is None:
        raise NotFound()
    if grant.user_id == actor.user_id:
        raise Forbidden("Another administrator must review your own emergency access")
    if grant.reviewed_at is not None:
        raise Conflict("This emergency access has already been reviewed")
    grant.reviewed_at, grant.reviewed_by, grant.disposition = utcnow(), actor.user_id, data.disposition.value
    if data.note:
        grant.review_note_ct = keys.seal_json(session, keyring, grant.patient_id, aad=NOTE_AAD,
                                              binding=_binding(grant.id), value=data.note)
    session.flush()
    audit.record(session, actor=actor, action=Action.break_glass_review.value, allowed=True,
                 reason=grant.disposition, patient_id=grant.patient_id, grant_id=grant.id,
                 event="break_glass.review")
    return _out(session, keyring, grant)
