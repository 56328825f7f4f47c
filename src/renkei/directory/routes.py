"""JSON API: organisations and their staff (org admins manage their own organisation)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from renkei.auth.dependencies import ActorDep, KeyringDep, OrgAdminDep, SettingsDep
from renkei.auth.enrolment import EnrolmentCode
from renkei.db.session import SessionDep
from renkei.directory import service
from renkei.directory.schemas import (
    OrganisationIn,
    OrganisationOut,
    StaffIn,
    StaffOut,
    StaffPatch,
    StaffWithCodeOut,
)

router = APIRouter(tags=["directory"])


@router.get("/organisations", response_model=list[OrganisationOut], summary="Organisations of the region")
def list_organisations(actor: ActorDep, session: SessionDep):
    """The region's organisations (used to address sheets and to build consents)."""
    return service.list_organisations(session)


@router.post("/organisations", response_model=OrganisationOut, status_code=status.HTTP_201_CREATED,
             summary="Register an organisation (region admin)")
def create_organisation(body: OrganisationIn, actor: ActorDep, session: SessionDep):
    """Add an organisation to the region directory."""
    return service.create_organisation(session, actor=actor, data=body)


@router.get("/organisations/{org_id}", response_model=OrganisationOut, summary="One organisation")
def get_organisation(org_id: uuid.UUID, actor: ActorDep, session: SessionDep):
    """A public directory entry (name, kind, phone), for any signed-in professional."""
    return service.get_organisation(session, org_id)


@router.get("/organisations/{org_id}/staff", response_model=list[StaffOut],
            summary="Staff of my organisation")
def list_staff(org_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep):
    """Every professional of the organisation, active and disabled."""
    return service.list_staff(session, actor=actor, org_id=org_id)


@router.post("/organisations/{org_id}/staff", response_model=StaffWithCodeOut,
             status_code=status.HTTP_201_CREATED, summary="Add a professional")
def create_staff(org_id: uuid.UUID, body: StaffIn, actor: OrgAdminDep, session: SessionDep,
                 settings: SettingsDep, keyring: KeyringDep):
    """Create an account with an initial password the professional changes after signing in; where two-factor
    sign-in will be required of them, the answer carries their one-time enrolment code."""
    return _with_code(*service.create_staff(session, actor=actor, settings=settings, keyring=keyring,
                                            org_id=org_id, data=body))


@router.get("/staff/{user_id}", response_model=StaffOut, summary="One professional")
def get_staff(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep):
    """A professional of my organisation."""
    return service.get_staff(session, actor=actor, user_id=user_id)


@router.patch("/staff/{user_id}", response_model=StaffOut, summary="Edit a professional")
def update_staff(user_id: uuid.UUID, body: StaffPatch, actor: OrgAdminDep, session: SessionDep):
    """Change name, kana, email, profession or role."""
    return service.update_staff(session, actor=actor, user_id=user_id, data=body)


@router.post("/staff/{user_id}/disable", response_model=StaffOut, summary="Disable an account")
def disable_staff(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep):
    """Disable at once: sign-in refused and every existing token stops working on its next request."""
    return service.set_active(session, actor=actor, user_id=user_id, active=False)


@router.post("/staff/{user_id}/enable", response_model=StaffOut, summary="Re-enable an account")
def enable_staff(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep):
    """Allow a disabled professional to sign in again."""
    return service.set_active(session, actor=actor, user_id=user_id, active=True)


@router.post("/staff/{user_id}/reset-2fa", response_model=StaffWithCodeOut,
             summary="Reset two-factor authentication")
def reset_2fa(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep):
    """Clear a lost authenticator and sign the person out; the answer carries the one-time enrolment code they
    need, with their password, to enrol again (hand it over in person)."""
    return _with_code(*service.reset_totp(session, actor=actor, keyring=keyring, user_id=user_id))


@router.post("/staff/{user_id}/enrolment-code", response_model=StaffWithCodeOut,
             summary="Issue a new two-factor enrolment code")
def new_enrolment_code(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep):
    """For someone not yet enrolled: code lost or expired, or a new role that requires two-factor sign-in."""
    return _with_code(*service.new_enrolment_code(session, actor=actor, keyring=keyring, user_id=user_id))


def _with_code(staff: StaffOut, code: EnrolmentCode | None) -> StaffWithCodeOut:
    return StaffWithCodeOut(**staff.model_dump(), enrolment_code=code.code if code else None,
                            enrolment_code_expires_at=code.expires_at if code else None)
