"""Break-the-glass (緊急時アクセス): request after an exact lookup and re-authentication; review queue;
revocation by an administrator or an "inappropriate" review."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from renkei.access import lookup, reauth
from renkei.access import service as access
from renkei.access.models import BreakGlassGrant, Disposition
from renkei.access.schemas import BreakGlassIn, GrantOut, ReviewIn
from renkei.access.service import Action
from renkei.audit import queries as audit_queries
from renkei.audit import service as audit
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.locking import locked
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, Role, User
from renkei.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from renkei.notify import events as notify_events
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
        revoked_at=grant.revoked_at, revoked_by=grant.revoked_by, consent_state=grant.consent_state,
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


CONFIRM_MISSING = FieldProblem(
    "/confirm", "救急対応のために必要であることを確認し、チェックしてください",
    "Confirm that you need this access for the emergency at hand",
)


def admit(session: Session, *, settings: Settings, actor: Actor, patient_id: uuid.UUID) -> None:
    """404 (audited) unless the requester may ask at all: the patient exists, and the requester is on its
    team, found it by exact lookup shortly before, or holds a grant already (a retried request)."""
    held = access.can(session, actor, Action.read_emergency, patient_id)
    if held.allowed and held.grant_id is not None:
        return
    patient = session.get(Patient, patient_id)
    on_team = access.active_membership(session, actor, patient_id) is not None
    looked_up = audit_queries.has_recent(
        session, actor_user_id=actor.user_id, action=Action.lookup.value, patient_id=patient_id,
        since=utcnow() - timedelta(minutes=settings.break_glass_lookup_minutes),
    )
    if patient is None or not (on_team or looked_up):
        _deny(session, actor, patient_id, "no_such_patient" if patient is None else "no_prior_lookup")
        raise NotFound()


def request_grant(
    session: Session, *, settings: Settings, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    data: BreakGlassIn,
) -> GrantOut:
    """Grant read-only emergency access to one patient for `break_glass_minutes`.

    The requester must have found the patient by exact lookup shortly before (or be on the team),
    be a physician or nurse, lack access already, confirm the need and re-enter the password (and TOTP
    if enrolled). Consent does not matter (APPI art. 27(1)(ii)); the grant records its state for review.
    """
    if not data.confirm:
        raise InvalidInput(fields=[CONFIRM_MISSING])
    now = utcnow()
    admit(session, settings=settings, actor=actor, patient_id=patient_id)
    if not lookup.may_break_glass(actor):
        _deny(session, actor, patient_id, "profession_not_allowed")
        raise Forbidden("Only physicians and nurses may request emergency access (緊急時アクセスは医師・看護師のみ)")
    lifetime = timedelta(minutes=settings.break_glass_minutes)
    if _recently_revoked(session, actor, patient_id, since=now - lifetime):
        # Otherwise ending a grant would only cost the holder a second request.
        _deny(session, actor, patient_id, "grant_revoked")
        raise Forbidden("An administrator ended your emergency access to this patient "
                        "(この患者への緊急時アクセスは管理者により終了されました)")
    current = access.can(session, actor, Action.read_emergency, patient_id)
    if current.allowed:
        _deny(session, actor, patient_id, "grant_active" if current.grant_id else "already_has_access")
        raise Conflict("You already have access to this patient's emergency information")
    reauth.reauthenticate(session, settings=settings, keyring=keyring, actor=actor, password=data.password,
                          otp=data.otp, action=Action.break_glass, patient_id=patient_id)
    consent = access.current_consent(session, patient_id)
    grant = BreakGlassGrant(
        id=uuid.uuid4(), patient_id=patient_id, user_id=actor.user_id, organisation_id=actor.organisation_id,
        profession=actor.profession, reason_code=data.reason_code.value, reason_ct=b"", granted_at=now,
        expires_at=now + lifetime, consent_state=access.consent_state(consent, access.today()),
    )
    grant.reason_ct = keys.seal_json(session, keyring, patient_id, aad=REASON_AAD, binding=_binding(grant.id),
                                     value=data.reason)
    session.add(grant)
    session.flush()
    audit.record(session, actor=actor, action=Action.break_glass.value, allowed=True,
                 reason=grant.reason_code, patient_id=patient_id, grant_id=grant.id,
                 consent_id=consent.id if consent else None, event="break_glass.grant")
    notify_events.break_glass_used(session, patient_id=patient_id, grant_id=grant.id,
                                   recipients=_recipients(session, actor, patient_id))
    return _out(session, keyring, grant)


def _recently_revoked(session: Session, actor: Actor, patient_id: uuid.UUID, *, since: datetime) -> bool:
    """Whether an administrator ended one of my grants on this patient that would otherwise still run."""
    return session.scalar(
        select(BreakGlassGrant.id).where(
            BreakGlassGrant.user_id == actor.user_id, BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.revoked_at.is_not(None), BreakGlassGrant.granted_at > since,
        ).limit(1)
    ) is not None


def _end_now(grant: BreakGlassGrant, actor: Actor, now: datetime) -> None:
    grant.revoked_at, grant.revoked_by = now, actor.user_id
    grant.expires_at = min(grant.expires_at, now)


def _reviewable(actor: Actor) -> Select[tuple[BreakGlassGrant]]:
    q = select(BreakGlassGrant)
    if not actor.is_region_admin:
        q = q.where(BreakGlassGrant.organisation_id == actor.organisation_id)
    return q


def _locked(session: Session, actor: Actor, grant_id: uuid.UUID) -> BreakGlassGrant | None:
    """The grant, locked and read as committed: of two administrators reviewing or revoking it at once, the
    second sees what the first did (409) instead of overwriting it."""
    return session.scalars(locked(_reviewable(actor).where(BreakGlassGrant.id == grant_id))).first()


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
    """Close a grant's review with a disposition; a grant is reviewed once. "Inappropriate" also ends
    a grant that is still running."""
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    grant = _locked(session, actor, grant_id)
    if grant is None:
        raise NotFound()
    if grant.user_id == actor.user_id:
        raise Forbidden("Another administrator must review your own emergency access")
    if grant.reviewed_at is not None:
        raise Conflict("This emergency access has already been reviewed")
    now = utcnow()
    grant.reviewed_at, grant.reviewed_by, grant.disposition = now, actor.user_id, data.disposition.value
    if data.disposition == Disposition.inappropriate and grant.expires_at > now:
        _end_now(grant, actor, now)
    if data.note:
        grant.review_note_ct = keys.seal_json(session, keyring, grant.patient_id, aad=NOTE_AAD,
                                              binding=_binding(grant.id), value=data.note)
    session.flush()
    audit.record(session, actor=actor, action=Action.break_glass_review.value, allowed=True,
                 reason=grant.disposition, patient_id=grant.patient_id, grant_id=grant.id,
                 event="break_glass.review")
    return _out(session, keyring, grant)


def revoke(session: Session, *, keyring: Keyring, actor: Actor, grant_id: uuid.UUID) -> GrantOut:
    """End a running grant now (the requester's organisation admins, or a region admin); it stays in the
    review queue, and the holder cannot break the glass on that patient again until it would have expired."""
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    grant = _locked(session, actor, grant_id)
    if grant is None:
        raise NotFound()
    now = utcnow()
    if grant.expires_at <= now:
        raise Conflict("This emergency access has already ended")
    _end_now(grant, actor, now)
    session.flush()
    audit.record(session, actor=actor, action=Action.break_glass_review.value, allowed=True, reason="revoked",
                 patient_id=grant.patient_id, grant_id=grant.id, event="break_glass.revoke")
    return _out(session, keyring, grant)
