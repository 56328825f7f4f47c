"""Pages: the organisation admin's staff list (add, disable, enable)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from renkei.auth.dependencies import OrgAdminDep
from renkei.db.session import SessionDep
from renkei.directory import service
from renkei.directory.models import Profession
from renkei.directory.schemas import StaffIn
from renkei.errors import InvalidInput
from renkei.web.pages import page_context
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)


def _staff_page(request: Request, session: SessionDep, actor, errors=None, status: int = 200) -> Response:
    staff = service.list_staff(session, actor=actor, org_id=actor.organisation_id)
    ctx = page_context(request, session, actor, staff=staff, professions=[p.value for p in Profession],
                       errors=errors or [])
    return render(request, "staff.html", ctx, status_code=status)


@router.get("/admin/staff")
def staff_list(request: Request, actor: OrgAdminDep, session: SessionDep) -> Response:
    """My organisation's staff."""
    return _staff_page(request, session, actor)


@router.post("/admin/staff")
def staff_add(
    request: Request, actor: OrgAdminDep, session: SessionDep,
    name: Annotated[str, Form(max_length=100)], email: Annotated[str, Form(max_length=254)],
    profession: Annotated[str, Form(max_length=30)], role: Annotated[str, Form(max_length=20)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Add a professional; errors are shown next to the form."""
    try:
        data = StaffIn(name=name, email=email, profession=profession, role=role, password=password)
        service.create_staff(session, actor=actor, org_id=actor.organisation_id, data=data)
    except ValidationError as exc:
        return _staff_page(request, session, actor, problems_from_errors(exc.errors()), status=422)
    except InvalidInput as exc:
        return _staff_page(request, session, actor, exc.fields, status=422)
    return RedirectResponse("/admin/staff", status_code=303)


@router.post("/admin/staff/{user_id}/disable")
def staff_disable(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep) -> Response:
    """Disable an account (its sessions end at once)."""
    service.set_active(session, actor=actor, user_id=user_id, active=False)
    return RedirectResponse("/admin/staff", status_code=303)


@router.post("/admin/staff/{user_id}/enable")
def staff_enable(user_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep) -> Response:
    """Re-enable an account."""
    service.set_active(session, actor=actor, user_id=user_id, active=True)
    return RedirectResponse("/admin/staff", status_code=303)
