"""Directory services: organisations and the org-admin staff lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from renkei.audit import service as audit
from renkei.auth import enrolment, passwords
from renkei.auth import service as auth_service
from renkei.auth.enrolment import EnrolmentCode
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, OrgKind, Profession, Role, User
from renkei.directory.schemas import OrganisationIn, OrganisationOut, StaffIn, StaffOut, StaffPatch
from renkei.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound

# A licensed profession (医師・歯科医師・看護師・薬剤師) is what the access rules trust: it opens sheets to write
# and, for physicians and nurses, break-the-glass on any patient in the region. An organisation admin
# vouches for their own staff's licences, so they may assign one only where such a professional works;
# a region admin, who registers the organisations, may assign it anywhere. Nobody changes their own.
_MEDICAL = frozenset({OrgKind.hospital, OrgKind.home_care_clinic, OrgKind.clinic, OrgKind.dental_clinic})
LICENSED_WORKPLACES: dict[str, frozenset[OrgKind]] = {
    Profession.physician: _MEDICAL,
    Profession.dentist: _MEDICAL,
    Profession.nurse: _MEDICAL | {OrgKind.visiting_nurse_station, OrgKind.care_service_provider,
                                  OrgKind.community_support_centre},
    Profession.pharmacist: _MEDICAL | {OrgKind.pharmacy},
}

_EMAIL_TAKEN = FieldProblem("/email", "このメールアドレスは既に登録されています",
                            "This email address is already registered")


def me(session: Session, *, settings: Settings, user_id: uuid.UUID) -> dict[str, object]:
    """The signed-in user's own profile."""
    user = session.get(User, user_id)
    assert user is not None
    org = session.get(Organisation, user.organisation_id)
    return {
        "id": user.id, "email": user.email, "name": user.name, "profession": user.profession,
        "role": user.role, "organisation_id": user.organisation_id,
        "organisation_name": org.name if org else "", "totp_enabled": user.totp_enabled,
        "totp_required": auth_service.totp_required(settings, user),
    }


# -- organisations --------------------------------------------------------------------------


def list_organisations(session: Session) -> list[OrganisationOut]:
    """Every active organisation of the region (a public directory, no patient data)."""
    orgs = session.scalars(select(Organisation).where(Organisation.active).order_by(Organisation.name))
    return [OrganisationOut.model_validate(org) for org in orgs]


def get_organisation(session: Session, org_id: uuid.UUID) -> OrganisationOut:
    """One directory entry, inactive ones included: old entries and consents still name them."""
    return OrganisationOut.model_validate(_load_organisation(session, org_id))


def create_organisation(session: Session, *, actor: Actor, data: OrganisationIn) -> OrganisationOut:
    """Region admins register organisations."""
    if not actor.is_region_admin:
        raise Forbidden("Region administrators only")
    org = Organisation(name=data.name, kind=data.kind.value, phone=data.phone)
    session.add(org)
    session.flush()
    return OrganisationOut.model_validate(org)


def _load_organisation(session: Session, org_id: uuid.UUID) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound()
    return org


# -- staff ------------------------------------------------------------------------------------


def _manageable_org(actor: Actor, org_id: uuid.UUID) -> None:
    # Another organisation's staff list is not ours to see: 404, like any object outside one's reach.
    if not (actor.is_region_admin or (actor.is_org_admin and actor.organisation_id == org_id)):
        raise NotFound()


def _load_staff(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    _manageable_org(actor, user.organisation_id)
    return user


def can_modify(actor: Actor, staff: StaffOut | User) -> bool:
    """Whether the actor may change this account (pages use it to hide controls they would refuse)."""
    # An org admin who shares an organisation with a region admin must not be able to demote or lock them out.
    return staff.role != Role.region_admin or actor.is_region_admin


def _require_modifiable(actor: Actor, user: User) -> None:
    if not can_modify(actor, user):
        raise Forbidden("Only a region administrator can change a region administrator's account")


def _check_grantable(actor: Actor, role: Role) -> None:
    if role == Role.region_admin and not actor.is_region_admin:
        raise Forbidden("Only a region administrator can grant the region administrator role")


def _check_profession(actor: Actor, org: Organisation, profession: str) -> None:
    workplaces = LICENSED_WORKPLACES.get(profession)
    if workplaces is None or actor.is_region_admin or org.kind in workplaces:
        return
    raise Forbidden("Only a region administrator can assign this licensed profession in this kind of "
                    "organisation (この職種はこの種別の事業所では地域管理者のみが設定できます)")


def _email_taken(session: Session, email: str, *, except_id: uuid.UUID | None = None) -> bool:
    q = select(func.count()).select_from(User).where(User.email == email)
    if except_id is not None:
        q = q.where(User.id != except_id)
    return (session.scalar(q) or 0) > 0


def _write_unique_email(session: Session, write: Callable[[], None]) -> None:
    """Apply `write` in a savepoint so a duplicate email leaves the transaction usable (pages re-render)."""
    # The count above cannot see a concurrent request's uncommitted insert; the unique constraint can.
    # begin_nested() flushes what is already pending, so the change itself must happen inside it.
    try:
        with session.begin_nested():
            write()
            session.flush()
    except IntegrityError as exc:
        if "email" in str(exc.orig).lower():
            raise InvalidInput(fields=[_EMAIL_TAKEN]) from exc
        raise


def list_staff(session: Session, *, actor: Actor, org_id: uuid.UUID) -> list[StaffOut]:
    """Staff of an organisation, active and disabled, for its admin."""
    _manageable_org(actor, org_id)
    q = select(User).where(User.organisation_id == org_id).order_by(User.name, User.email)
    users = session.scalars(q)
    return [StaffOut.model_validate(user) for user in users]


def get_staff(session: Session, *, actor: Actor, user_id: uuid.UUID) -> StaffOut:
    """A professional of an organisation the actor administers."""
    return StaffOut.model_validate(_load_staff(session, actor, user_id))


def initial_password_problems(password: str, *, email: str, name: str) -> list[FieldProblem]:
    """Policy problems of an initial password, which must not contain the person's email or name."""
    return passwords.check_policy(password, context=(email.strip().lower().split("@")[0], name.strip()))


def create_staff(
    session: Session, *, actor: Actor, settings: Settings, keyring: Keyring, org_id: uuid.UUID, data: StaffIn,
) -> tuple[StaffOut, EnrolmentCode | None]:
    """Add a professional to an organisation with an initial password, and a two-factor enrolment code
    where two-factor sign-in will be required of them (both handed over by the admin)."""
    _manageable_org(actor, org_id)
    org = _load_organisation(session, org_id)
    _check_grantable(actor, data.role)
    _check_profession(actor, org, data.profession.value)
    problems = initial_password_problems(data.password, email=data.email, name=data.name)
    if _email_taken(session, data.email):
        problems.append(_EMAIL_TAKEN)
    if problems:
        raise InvalidInput(fields=problems)
    user = User(organisation_id=org_id, email=data.email, name=data.name, name_kana=data.name_kana,
                profession=data.profession.value, role=data.role.value,
                password_hash=passwords.hash_password(data.password))
    _write_unique_email(session, lambda: session.add(user))
    audit.record_account(session, actor=actor, event="staff.create", account=user, reason=user.role)
    code = (enrolment.issue_enrolment_code(session, keyring=keyring, user=user)
            if enrolment.enrolment_code_needed(settings, user) else None)
    return StaffOut.model_validate(user), code


def create_user(
    session: Session, *, org_id: uuid.UUID, email: str, name: str, profession: str, role: str, password: str,
    name_kana: str | None = None,
) -> User:
    """Insert a user for trusted callers (CLI, demo) that check permissions and policy themselves."""
    user = User(organisation_id=org_id, email=email.strip().lower(), name=name, name_kana=name_kana,
                profession=profession, role=role, password_hash=passwords.hash_password(password))
    session.add(user)
    session.flush()
    return user


def update_staff(session: Session, *, actor: Actor, user_id: uuid.UUID, data: StaffPatch) -> StaffOut:
    """Edit name, kana, profession, email or role."""
    user = _load_staff(session, actor, user_id)
    _require_modifiable(actor, user)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "role" in changes and changes["role"] != user.role:
        _check_grantable(actor, Role(changes["role"]))
        if user.id == actor.user_id:
            raise Forbidden("You cannot change your own role")
    if "profession" in changes and changes["profession"] != user.profession:
        if user.id == actor.user_id:
            raise Forbidden("You cannot change your own profession")
        _check_profession(actor, _load_organisation(session, user.organisation_id), changes["profession"])
    if "email" in changes and _email_taken(session, changes["email"], except_id=user.id):
        raise InvalidInput(fields=[_EMAIL_TAKEN])
    changes = {key: value for key, value in changes.items() if getattr(user, key) != value}
    if changes:
        _write_unique_email(session, lambda: _apply(user, {**changes, "updated_at": utcnow()}))
    for field in ("role", "profession") & changes.keys():
        audit.record_account(session, actor=actor, event=f"staff.{field}_change", account=user,
                             reason=changes[field])
    return StaffOut.model_validate(user)


def _apply(user: User, values: dict[str, object]) -> None:
    for key, value in values.items():
        setattr(user, key, value)


def set_active(session: Session, *, actor: Actor, user_id: uuid.UUID, active: bool) -> StaffOut:
    """Disable (ending every session at once) or re-enable an account."""
    user = _load_staff(session, actor, user_id)
    _require_modifiable(actor, user)
    if user.id == actor.user_id and not active:
        raise Forbidden("You cannot disable your own account")
    if user.active != active:
        user.active = active
        user.disabled_at = None if active else utcnow()
        user.updated_at = utcnow()
    if not active:
        # Sessions revoked here stay revoked after re-enabling: the professional signs in afresh.
        auth_service.revoke_all_sessions(session, user.id, reason="disabled")
    session.flush()
    audit.record_account(session, actor=actor, event="staff.enable" if active else "staff.disable",
                         account=user)
    return StaffOut.model_validate(user)


def reset_totp(
    session: Session, *, actor: Actor, keyring: Keyring, user_id: uuid.UUID,
) -> tuple[StaffOut, EnrolmentCode]:
    """An admin clears a lost authenticator; the user enrols again with the one-time enrolment code the admin
    hands over in person (the password alone is not enough where two-factor sign-in is required)."""
    user = _load_staff(session, actor, user_id)
    _require_modifiable(actor, user)
    if user.id == actor.user_id:
        # Dropping one's own second factor needs the password (POST /auth/totp/disable), not admin rights.
        raise Forbidden("Use your own account settings to change your two-factor authentication")
    auth_service.disable_totp(session, user=user)
    auth_service.revoke_all_sessions(session, user.id, reason="2fa_reset")
    user.updated_at = utcnow()
    session.flush()
    audit.record_account(session, actor=actor, event="staff.reset_2fa", account=user)
    code = enrolment.issue_enrolment_code(session, keyring=keyring, user=user)
    return StaffOut.model_validate(user), code


def new_enrolment_code(
    session: Session, *, actor: Actor, keyring: Keyring, user_id: uuid.UUID,
) -> tuple[StaffOut, EnrolmentCode]:
    """A fresh enrolment code for someone who has not set up two-factor sign-in (lost or expired code, or a
    role that now requires it); any earlier code stops working."""
    user = _load_staff(session, actor, user_id)
    _require_modifiable(actor, user)
    if user.id == actor.user_id:
        raise Forbidden("An enrolment code is for someone else's account")
    if user.totp_enabled:
        raise Conflict("Two-factor authentication is already set up; reset it to issue a new enrolment code")
    audit.record_account(session, actor=actor, event="staff.enrolment_code", account=user)
    return StaffOut.model_validate(user), enrolment.issue_enrolment_code(session, keyring=keyring, user=user)


def disable_own_totp(session: Session, *, settings: Settings, user_id: uuid.UUID) -> None:
    """Turn off one's own TOTP where policy allows it."""
    user = session.get(User, user_id)
    assert user is not None
    if settings.require_2fa == "all" or user.role in (Role.org_admin, Role.region_admin):
        raise Forbidden("Two-factor authentication is required for this account")
    auth_service.disable_totp(session, user=user)


def set_password(
    session: Session, *, user_id: uuid.UUID, password: str, keep_session: uuid.UUID | None
) -> None:
    """Change a password and end every other session of the user."""
    user = session.get(User, user_id)
    assert user is not None
    user.password_hash = passwords.hash_password(password)
    user.updated_at = utcnow()
    auth_service.revoke_all_sessions(session, user.id, reason="password_changed", keep=keep_session)
    session.flush()
