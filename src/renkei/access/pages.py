"""Pages: a patient's access log, emergency lookup and break-the-glass request, the review queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from renkei.access import break_glass, reports
from renkei.access.exceptions import FormRejected, ReauthenticationFailed
from renkei.access.models import BreakGlassReason, Disposition
from renkei.access.schemas import BreakGlassIn, ReviewIn
from renkei.audit import service as audit
from renkei.auth.dependencies import ActorDep, KeyringDep, OrgAdminDep, SettingsDep, client_ip
from renkei.auth.service import Actor
from renkei.db.session import SessionDep
from renkei.errors import Conflict, DomainError, FieldProblem, Forbidden, InvalidInput
from renkei.patients import service as patient_service
from renkei.patients.schemas import LookupIn
from renkei.web.pages import page_context
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)


@router.get("/patients/{patient_id}/access-log")
def access_log_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                    keyring: KeyringDep, before_seq: int | None = None) -> Response:
    """Who accessed this record (閲覧記録)."""
    entries = reports.access_log(session, actor=actor, patient_id=patient_id, before_seq=before_seq,
                                 limit=100)
    patient = patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    ctx = page_context(request, session, actor, patient=patient, entries=entries)
    return render(request, "access_log.html", ctx)


def _emergency(
    request: Request, session: SessionDep, actor: Actor, *, status: int = 200, **extra: Any,
) -> Response:
    defaults: dict[str, Any] = {"results": None, "grant": None, "errors": [], "form": {}, "requested": None}
    reasons = [r.value for r in BreakGlassReason]
    ctx = page_context(request, session, actor, reasons=reasons, **(defaults | extra))
    return render(request, "break_glass.html", ctx, status_code=status)


LookupText = Annotated[str, Form(max_length=100)]
LookupDate = Annotated[str, Form(max_length=10)]
LookupNumber = Annotated[str, Form(max_length=40)]


def _lookup_in(name_kana: str, birth_date: str, insurance_number: str) -> LookupIn:
    raw = {"name_kana": name_kana or None, "birth_date": birth_date or None,
           "insurance_number": insurance_number or None}
    return LookupIn.model_validate({k: v for k, v in raw.items() if v is not None})


@router.get("/emergency")
def emergency_page(request: Request, actor: ActorDep, session: SessionDep) -> Response:
    """Exact lookup for emergency access (緊急時アクセス)."""
    return _emergency(request, session, actor)


@router.post("/emergency/lookup")
def emergency_lookup(
    request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    name_kana: LookupText = "", birth_date: LookupDate = "", insurance_number: LookupNumber = "",
) -> Response:
    """Exact match only (kana name + birth date, or insurance number); every lookup is audited."""
    form = {"name_kana": name_kana, "birth_date": birth_date, "insurance_number": insurance_number}
    try:
        data = _lookup_in(name_kana, birth_date, insurance_number)
        results = patient_service.lookup_for(session, keyring=keyring, actor=actor,
                                             client_ip=client_ip(request), data=data)
    except ValidationError as exc:
        problems = problems_from_errors(exc.errors())
        return _emergency(request, session, actor, errors=problems, form=form, status=422)
    except InvalidInput as exc:
        return _emergency(request, session, actor, errors=exc.fields, form=form, status=422)
    return _emergency(request, session, actor, results=results, form=form)


@router.post("/patients/{patient_id}/break-glass")
def emergency_request(
    patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    settings: SettingsDep, reason_code: Annotated[str, Form(max_length=30)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "", password: Annotated[str, Form(max_length=1024)] = "",
    otp: Annotated[str, Form(max_length=10)] = "", confirm: Annotated[str, Form(max_length=10)] = "",
    name_kana: LookupText = "", birth_date: LookupDate = "", insurance_number: LookupNumber = "",
) -> Response:
    """Request read-only emergency access; shows the grant and when it expires. A refusal shows the page
    again as it was, search results and typed reason included (never the password)."""
    form = {"name_kana": name_kana, "birth_date": birth_date, "insurance_number": insurance_number,
            "reason_code": reason_code, "reason": reason, "confirm": bool(confirm)}

    def again(problems: list[FieldProblem], status: int) -> Response:
        results = _results_again(request, session, keyring, actor, form)
        return _emergency(request, session, actor, errors=problems, form=form, status=status, results=results,
                          requested=patient_id)

    try:
        data = BreakGlassIn.model_validate({
            "reason_code": reason_code, "reason": reason, "password": password, "otp": otp or None,
            "confirm": confirm in ("yes", "on", "true"),
        })
        grant = break_glass.request_grant(session, settings=settings, keyring=keyring, actor=actor,
                                          patient_id=patient_id, data=data)
    except ValidationError as exc:
        return again(problems_from_errors(exc.errors()), 422)
    except (InvalidInput, ReauthenticationFailed) as exc:
        page = again(exc.fields, exc.status)
        audit.keep_pending_on_failure(session)  # the results shown again are a disclosure of their own
        raise FormRejected(page) from exc
    except (Conflict, Forbidden) as exc:
        page = again([FieldProblem("", exc.detail, exc.detail)], exc.status)
        audit.keep_pending_on_failure(session)
        raise FormRejected(page) from exc
    return _emergency(request, session, actor, grant=grant, status=201)


def _results_again(request: Request, session: SessionDep, keyring: KeyringDep, actor: Actor,
                   form: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The lookup the request form came from, run again (audited like any lookup); None without one."""
    try:
        data = _lookup_in(form["name_kana"], form["birth_date"], form["insurance_number"])
        return patient_service.lookup_for(session, keyring=keyring, actor=actor, client_ip=client_ip(request),
                                          data=data)
    except (ValidationError, DomainError):
        return None


@router.get("/admin/break-glass")
def review_page(request: Request, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep,
                show: str = "pending") -> Response:
    """Emergency accesses awaiting review (and, with show=all, reviewed ones)."""
    grants = break_glass.review_queue(session, keyring=keyring, actor=actor, pending_only=show != "all")
    ctx = page_context(request, session, actor, grants=grants, dispositions=[d.value for d in Disposition],
                       show=show)
    return render(request, "break_glass_review.html", ctx)


@router.post("/admin/break-glass/{grant_id}/review")
def review_submit(
    grant_id: uuid.UUID, actor: OrgAdminDep, session: SessionDep, keyring: KeyringDep,
    disposition: Annotated[str, Form(max_length=30)], note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record a disposition."""
    try:
        data = ReviewIn.model_validate({"disposition": disposition, "note": note or None})
    except ValidationError as exc:
        raise InvalidInput(fields=problems_from_errors(exc.errors())) from exc
    break_glass.review(session, keyring=keyring, actor=actor, grant_id=grant_id, data=data)
    return RedirectResponse("/admin/break-glass", status_code=303)
