"""Pages: an organisation admin's staff list and add form, the edit page, confirmations, enrolment codes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from renkei.auth.dependencies import KeyringDep, OrgAdminDep, SettingsDep
from renkei.auth.enrolment import EnrolmentCode
from renkei.auth.service import Actor
from renkei.db.session import SessionDep
from renkei.directory import service
from renkei.directory.models import Profession, Role
from renkei.directory.schemas import StaffIn, StaffOut, StaffPatch
from renkei.errors import FieldProblem, Forbidden, InvalidInput
from renkei.web.pages import page_context
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Form(max_length=100)]
Kana = Annotated[str, Form(max_length=100)]
Email = Annotated[str, Form(max_length=254)]
Choice = Annotated[str, Form(max_length=30)]
Password = Annotated[str, Form(max_length=1024)]
Confirm = Annotated[str, Form(max_length=10)]


def _roles_for(actor: Actor) -> list[str]:
    roles = [Role.member.value, Role.org_admin.value]
    return [*roles, Role.region_admin.value] if actor.is_region_admin else roles


def _by_path(problems: Sequence[FieldProblem]) -> dict[str, list[FieldProblem]]:
    out: dict[str, list[FieldProblem]] = {}
    for problem in problems:
        out.setdefault(problem.path, []).append(problem)
    return out


def _form_context(actor: Actor, form: dict[str, Any], problems: Sequence[FieldProblem]) -> dict[str, Any]:
    return {"form": form, "errors": list(problems), "field_errors": _by_path(problems),
            "professions": [p.value for p in Profession], "roles": _roles_for(actor)}


def _list_page(request: Request, session: Session, actor: Actor, *, form: dict[str, Any] | None = None,
               problems: Sequence[FieldProblem] = (), status: int = 200) -> Response:
    staff = service.list_staff(session, actor=actor, org_id=actor.organisation_id)
    ctx = page_context(request, session, actor, staff=staff,
                       modifiable={s.id for s in staff if service.can_modify(actor, s)},
                       organisation=service.get_organisation(session, actor.organisation_id),
                       **_form_context(actor, form or {"role": Role.member.value}, problems))
    return render(request, "staff.html", ctx, status_code=status)


def _edit_page(request: Request, session: Session, actor: Actor, staff: StaffOut, *,
               form: dict[str, Any] | None = None, problems: Sequence[FieldProblem] = (),
               status: int = 200) -> Response:
    ctx = page_context(request, session, actor, member=staff, can_modify=service.can_modify(actor, staff),
                       **_form_context(actor, form or staff.model_dump(), problems))
    return render(request, "staff_edit.html", ctx, status_code=status)


def _back_to_list() -> Response:
    return RedirectResponse("/admin/staff", status_code=303)


@router.get("/admin/staff")
def staff_list(request: Request, actor: OrgAdminDep, session: SessionDep) -> Response:
    """My organisation's staff with the add form."""
    return _list_page(request, session, actor)


@router.post("/admin/staff")
def staff_add(
    request: Request, actor: OrgAdminDep, session: SessionDep, settings: SettingsDep, keyring: KeyringDep,
    name: Name = "", name_kana: Kana = "", email: Email = "", profession: Choice = "", role: Choice = "",
    password: Password = "",
) -> Response:
    """Add a professional; problems are shown next to the fields they concern. Where two-factor sign-in will
    be required of them, their one-time enrolment code is shown once."""
    form = {"name": name, "name_kana": name_kana, "email": email, "profession": profession, "role": role}
    try:
        data = StaffIn(name=name, name_kana=name_kana or None, email=email, profession=profession, role=role,
                       password=password)
        staff, code = service.create_staff(session, actor=actor, settings=settings, keyring=keyring,
                                           org_id=actor.organisation_id, data=data)
    except ValidationError as exc:
        # Report the password policy together with the other fields so the admin fixes everything in one go.
        problems = problems_from_errors(exc.errors())
        if not any(p.path == "/password" for p in problems):
            problems += service.initial_password_problems(password, email=email, name=name)
        return _list_page(request, session, actor, form=form, problems=problems, status=422)
    except InvalidInput as exc:
        return _list_page(request, session, actor, form=form, problems=exc.fields, status=422)
    if code is None:
        return _back_to_list()
    return _code_page(request, session, actor, staff, code, event="added")


@router.get("/admin/staff/{user_id}")
def staff_edit(user_id: uuid.UUID, request: Request, actor: OrgAdminDep, session: SessionDep) -> Response:
    """One professional's details, with disable/enable and two-factor reset."""
    return _edit_page(request, session, actor, service.get_staff(session, actor=actor, user_id=user_id))


@router.post("/admin/staff/{user_id}")
def staff_save(
    user_id: uuid.UUID, request: Request, actor: OrgAdminDep, session: SessionDep, name: Name = "",
    name_kana: Kana = "", email: Email = "", profession: Choice = "", role: Choice = "",
) -> Response:
    """Save the edit form; one's own role is not offered, so it is only sent for other people."""
    staff = service.get_staff(session, actor=actor, user_id=user_id)
    form = {"name": name, "name_kana": name_kana, "email": email, "profession": profession,
            "role": role or staff.role}
    fields: dict[str, Any] = {"name": name, "name_kana": name_kana or None, "email": email,
                              "profession": profession}
    if role:
        fields["role"] = role
    try:
        service.update_staff(session, actor=actor, user_id=user_id, data=StaffPatch(**fields))
    except ValidationError as exc:
        return _edit_page(request, session, actor, staff, form=form,
                          problems=problems_from_errors(exc.errors()), status=422)
    except InvalidInput as exc:
        return _edit_page(request, session, actor, staff, form=form, problems=exc.fields, status=422)
    return _back_to_list()


def _code_page(request: Request, session: Session, actor: Actor, staff: StaffOut, code: EnrolmentCode, *,
               event: str) -> Response:
    # Shown once, in this answer only (no-store): the code is not kept anywhere it could be shown again.
    ctx = page_context(request, session, actor, member=staff, code=code, event=event)
    return render(request, "staff_code.html", ctx)


def _confirm_page(request: Request, session: Session, actor: Actor, user_id: uuid.UUID,
                  action: str) -> Response:
    staff = service.get_staff(session, actor=actor, user_id=user_id)
    if not service.can_modify(actor, staff) or staff.id == actor.user_id:
        raise Forbidden("You cannot change this account")
    ctx = page_context(request, session, actor, member=staff, action=action)
    return render(request, "staff_confirm.html", ctx)


def _confirmed(confirm: str) -> bool:
    # A tap on the list or edit page opens the confirmation page; only its own button sends confirm=yes.
    return confirm == "yes"


@router.get("/admin/staff/{user_id}/disable")
def staff_disable_confirm(user_id: uuid.UUID, request: Request, actor: OrgAdminDep,
                          session: SessionDep) -> Response:
    """Ask before disabling: the person is signed out everywhere at once."""
    return _confirm_page(request, session, actor, user_id, "disable")


@router.post("/admin/staff/{user_id}/disable")
def staff_disable(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep,
                  confirm: Confirm = "") -> Response:
    """Disable an account (its sessions end at once), once confirmed."""
    if not _confirmed(confirm):
        return RedirectResponse(f"/admin/staff/{user_id}/disable", status_code=303)
    service.set_active(session, actor=actor, user_id=user_id, active=False)
    return _back_to_list()


@router.post("/admin/staff/{user_id}/enable")
def staff_enable(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep) -> Response:
    """Re-enable an account."""
    service.set_active(session, actor=actor, user_id=user_id, active=True)
    return _back_to_list()


@router.get("/admin/staff/{user_id}/reset-2fa")
def staff_reset_2fa_confirm(user_id: uuid.UUID, request: Request, actor: OrgAdminDep,
                            session: SessionDep) -> Response:
    """Ask before clearing someone's authenticator."""
    return _confirm_page(request, session, actor, user_id, "reset-2fa")


@router.post("/admin/staff/{user_id}/reset-2fa")
def staff_reset_2fa(user_id: uuid.UUID, request: Request, actor: OrgAdminDep, session: SessionDep,
                    keyring: KeyringDep, confirm: Confirm = "") -> Response:
    """Clear a lost authenticator, once confirmed, and show the enrolment code to hand over in person."""
    if not _confirmed(confirm):
        return RedirectResponse(f"/admin/staff/{user_id}/reset-2fa", status_code=303)
    staff, code = service.reset_totp(session, actor=actor, keyring=keyring, user_id=user_id)
    return _code_page(request, session, actor, staff, code, event="reset")


@router.post("/admin/staff/{user_id}/enrolment-code")
def staff_enrolment_code(user_id: uuid.UUID, request: Request, actor: OrgAdminDep, session: SessionDep,
                         keyring: KeyringDep) -> Response:
    """A new enrolment code for someone not yet enrolled; an earlier code stops working."""
    staff, code = service.new_enrolment_code(session, actor=actor, keyring=keyring, user_id=user_id)
    return _code_page(request, session, actor, staff, code, event="issued")
