"""Directory services: organisations and the org-admin staff lifecycle."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.auth import passwords
from renkei.auth import service as auth_service
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.db.types import utcnow
from renkei.directory.models import Organisation, Role, User
from renkei.directory.schemas import OrganisationIn, StaffIn, StaffPatch
from renkei.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound


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


def list_organisations(session: Session) -> list[Organisation]:
    """Every active organisation of the region (a public directory, no patient data)."""
    return list(session.scalars(select(Organisation).where(Organisation.active).order_by(Organisation.name)))


def get_organisation(session: Session, org_id: uuid.UUID) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound()
    return org


def create_organisation(session: Session, *, actor: Actor, data: OrganisationIn) -> Organisation:
    """Region admins register organisations."""
    if not actor.is_region_admin:
        raise Forbidden("Region administrators only")
    org = Organisation(name=data.name, kind=data.kind.value, phone=data.phone)
    session.add(org)
    session.flush()
    return org


def _manageable_org(actor: Actor, org_id: uuid.UUID) -> None:
    # Another organisation's staff list is not ours to see: 404, like any object outside one's reach.
    if not (actor.is_region_admin or (actor.is_org_admin and actor.organisation_id == org_id)):
        raise NotFound()


def list_staff(session: Session, *, actor: Actor, org_id: uuid.UUID) -> list[User]:
    """Staff of an organisation, for its admin."""
    _manageable_org(actor, org_id)
    return list(session.scalars(select(User).where(User.organisation_id == org_id).order_by(User.name)))


def get_staff(session: Session, *, actor: Actor, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    _manageable_org(actor, user.organisation_id)
    return user


def _email_taken(session: Session, email: str, *, except_id: uuid.UUID | None = None) -> bool:
    q = select(func.count()).select_from(User).where(User.email == email)
    if except_id:
        q = q.where(User.id != except_id)
    return session.scalar(q) > 0


def _check_role(actor: Actor, role: Role) -> None:
    if role == Role.region_admin and not actor.is_region_admin:
        raise Forbidden("Only a region administrator can grant the region administrator role")


def create_staff(session: Session, *, actor: Actor, org_id: uuid.UUID, data: StaffIn) -> User:
    """Add a professional to an organisation with an initial password."""
    _manageable_org(actor, org_id)
    get_organisation(session, org_id)
    _check_role(actor, data.role)
    email = data.email.strip().lower()
    problems = passwords.check_policy(data.password, context=(email.split("@")[0], data.name))
    if _email_taken(session, email):
        problems.append(FieldProblem("/email", "このメールアドレスは既に登録されています",
                                     "This email address is already registered"))
    if problems:
        raise InvalidInput(fields=problems)
    user = create_user(session, org_id=org_id, email=email, name=data.name, name_kana=data.name_kana,
                       profession=data.profession.value, role=data.role.value, password=data.password)
    return user


def create_user(
    session: Session, *, org_id: uuid.UUID, email: str, name: str, profession: str, role: str, password: str,
    name_kana: str | None = None,
) -> User:
    """Insert a user (callers check permissions and policy)."""
    user = User(organisation_id=org_id, email=email.strip().lower(), name=name, name_kana=name_kana,
                profession=profession, role=role, password_hash=passwords.hash_password(password))
    session.add(user)
    session.flush()
    return user


def update_staff(session: Session, *, actor: Actor, user_id: uuid.UUID, data: StaffPatch) -> User:
    """Edit name, kana, profession, email or role."""
    user = get_staff(session, actor=actor, user_id=user_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("role") is not None:
        _check_role(actor, Role(changes["role"]))
        if user.id == actor.user_id and changes["role"] != user.role:
            raise Conflict("You cannot change your own role")
    if changes.get("email"):
        changes["email"] = changes["email"].strip().lower()
        if _email_taken(session, changes["email"], except_id=user.id):
            raise InvalidInput(fields=[FieldProblem("/email", "このメールアドレスは既に登録されています",
                                                    "This email address is already registered")])
    for key, value in changes.items():
        if value is None and key != "name_kana":
            continue
        setattr(user, key, value.value if hasattr(value, "value") else value)
    user.updated_at = utcnow()
    session.flush()
    return user


def set_active(session: Session, *, actor: Actor, user_id: uuid.UUID, active: bool) -> User:
    """Disable (ending every session at once) or re-enable an account."""
    user = get_staff(session, actor=actor, user_id=user_id)
    if user.id == actor.user_id and not active:
        raise Conflict("You cannot disable your own account")
    user.active = active
    user.disabled_at = None if active else utcnow()
    user.updated_at = utcnow()
    if not active:
        auth_service.revoke_all_sessions(session, user.id, reason="disabled")
    session.flush()
    return user


def reset_totp(session: Session, *, actor: Actor, user_id: uuid.UUID) -> User:
    """An admin clears a lost authenticator; the user enrols again at next sign-in."""
    user = get_staff(session, actor=actor, user_id=user_id)
    auth_service.disable_totp(session, user=user)
    auth_service.revoke_all_sessions(session, user.id, reason="2fa_reset")
    return user


def disable_own_totp(session: Session, *, settings: Settings, user_id: uuid.UUID) -> None:
    user = session.get(User, user_id)
    assert user is not None
    if settings.require_2fa == "all" or user.role in (Role.org_admin, Role.region_admin):
        raise Forbidden("Two-factor authentication is required for this account")
    auth_service.disable_totp(session, user=user)


def set_password(session: Session, *, user_id: uuid.UUID, password: str, keep_session: uuid.UUID | None) -> None:
    """Change a password and end every other session of the user."""
    user = session.get(User, user_id)
    assert user is not None
    user.password_hash = passwords.hash_password(password)
    user.updated_at = utcnow()
    auth_service.revoke_all_sessions(session, user.id, reason="password_changed", keep=keep_session)
    session.flush()
