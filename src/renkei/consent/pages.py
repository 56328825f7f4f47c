"""Pages: a patient's consents — history, recording a new version, withdrawal."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from renkei.access import service as access
from renkei.access.exceptions import FormRejected, ReauthenticationFailed
from renkei.access.service import Action
from renkei.audit import service as audit
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.auth.service import Actor
from renkei.consent import service
from renkei.consent.models import Category, ConsentMethod, ConsentScope, GivenBy
from renkei.consent.schemas import ConsentCreate, WithdrawIn
from renkei.db.session import SessionDep
from renkei.directory import service as directory_service
from renkei.errors import (
    FieldProblem,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from renkei.patients import service as patient_service
from renkei.web.pages import page_context
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=100)]


def _page(request: Request, session: SessionDep, keyring: KeyringDep, actor: Actor, patient_id: uuid.UUID, *,
          errors: list[FieldProblem] | None = None, sent: str = "record", form: dict[str, Any] | None = None,
          withdrawal: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The consent page. `errors` belong to the form that was `sent` ("record", "withdraw" or "scan"); `form`
    and `withdrawal` hold what was typed into the first two (never the password)."""
    patient = patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    consents = service.list_consents(session, keyring=keyring, actor=actor, patient_id=patient_id)
    team = patient_service.list_team(session, actor=actor, patient_id=patient_id, include_ended=False)
    team_orgs = {m["organisation_id"]: m["organisation_name"] for m in team}
    ctx = page_context(
        request, session, actor, patient=patient, consents=consents, team_orgs=team_orgs,
        organisations=directory_service.list_organisations(session), categories=[c.value for c in Category],
        methods=[m.value for m in ConsentMethod], scopes=[s.value for s in ConsentScope],
        givers=[g.value for g in GivenBy], form=form or {}, withdrawal=withdrawal or {},
        errors={sent: errors or []},
    )
    return render(request, "consent.html", ctx, status_code=status)


# What the re-rendered form page reads (registration header, team, consent history).
_PAGE_READS = frozenset({Action.read_registration.value, Action.read_consent.value})


def _reject(session: SessionDep, actor: Actor, page: Response) -> NoReturn:
    """Fail the request with the re-rendered form. The page's reads stay on record after the rollback and
    so do denials (failed re-authentication), but not the allowed intent of the change that did not
    happen: a failed withdrawal must not read as "allow consent.withdraw", as in the JSON API."""
    for row in audit.pending(session):
        if row.actor_user_id == actor.user_id and row.decision == audit.ALLOW and row.action in _PAGE_READS:
            # Recording the same decision again merges into the queued row and marks it to survive.
            audit.record(session, actor=actor, action=row.action, allowed=True, reason=row.reason,
                         patient_id=row.patient_id, consent_id=row.consent_id, grant_id=row.grant_id,
                         event=row.event, persist_on_failure=True)
    raise FormRejected(page)


@router.get("/patients/{patient_id}/consents")
def consents_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                  keyring: KeyringDep) -> Response:
    """Consent history and the form to record a new version."""
    return _page(request, session, keyring, actor, patient_id)


@router.post("/patients/{patient_id}/consents")
def consent_record(
    patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    settings: SettingsDep,
    given_by: Annotated[str, Form(max_length=20)], method: Annotated[str, Form(max_length=30)],
    scope: Annotated[str, Form(max_length=20)], obtained_on: Annotated[str, Form(max_length=10)],
    password: Annotated[str, Form(max_length=1024)],
    proxy_name: Text = "", proxy_relationship: Annotated[str, Form(max_length=50)] = "",
    organisation_ids: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 - FastAPI copies defaults
    excluded_categories: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    note: Annotated[str, Form(max_length=2000)] = "", otp: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Record a consent from the form; problems are shown next to it."""
    form = {"given_by": given_by, "method": method, "scope": scope, "obtained_on": obtained_on,
            "proxy_name": proxy_name, "proxy_relationship": proxy_relationship,
            "organisation_ids": organisation_ids, "excluded_categories": excluded_categories,
            "valid_from": valid_from, "valid_until": valid_until, "note": note}
    raw = {k: v for k, v in form.items() if v not in ("", None)}
    try:
        data = ConsentCreate.model_validate({**raw, "password": password, "otp": otp or None})
        service.record(session, settings=settings, keyring=keyring, actor=actor, patient_id=patient_id,
                       data=data)
    except ValidationError as exc:
        return _page(request, session, keyring, actor, patient_id, errors=problems_from_errors(exc.errors()),
                     form=form, status=422)
    except (InvalidInput, ReauthenticationFailed) as exc:
        _reject(session, actor, _page(request, session, keyring, actor, patient_id, errors=exc.fields,
                                      form=form, status=exc.status))
    return RedirectResponse(f"/patients/{patient_id}/consents", status_code=303)


@router.post("/patients/{patient_id}/consents/{consent_id}/withdraw")
def consent_withdraw(
    patient_id: uuid.UUID, consent_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, settings: SettingsDep,
    reason: Annotated[str, Form(max_length=1000)], password: Annotated[str, Form(max_length=1024)],
    withdrawn_on: Annotated[str, Form(max_length=10)] = "", otp: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Withdraw the current consent (同意撤回); a refusal shows the form again with what was typed."""
    raw = {"reason": reason, "password": password, "otp": otp or None, "withdrawn_on": withdrawn_on or None}
    typed = {"consent_id": str(consent_id), "reason": reason, "withdrawn_on": withdrawn_on}
    try:
        data = WithdrawIn.model_validate(raw)
        service.withdraw(session, settings=settings, keyring=keyring, actor=actor, patient_id=patient_id,
                         consent_id=consent_id, data=data)
    except ValidationError as exc:
        return _page(request, session, keyring, actor, patient_id, errors=problems_from_errors(exc.errors()),
                     sent="withdraw", withdrawal=typed, status=422)
    except (InvalidInput, ReauthenticationFailed) as exc:
        _reject(session, actor, _page(request, session, keyring, actor, patient_id, errors=exc.fields,
                                      sent="withdraw", withdrawal=typed, status=exc.status))
    # Withdrawal usually ends the withdrawing member's own access: go back to the patient list then.
    still_allowed = access.can(session, actor, Action.read_consent, patient_id).allowed
    target = f"/patients/{patient_id}/consents" if still_allowed else "/patients"
    return RedirectResponse(target, status_code=303)


@router.post("/patients/{patient_id}/consents/{consent_id}/attachments")
def consent_attach(
    patient_id: uuid.UUID, consent_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
    keyring: KeyringDep, settings: SettingsDep, file: Annotated[UploadFile, File()],
) -> Response:
    """Attach the signed paper's scan to the current consent, later than it was recorded; sending the same
    file again (a double tap, a retried upload) keeps it once."""
    data = file.file.read(settings.max_upload_bytes + 1)
    try:
        service.add_document(session, settings=settings, keyring=keyring, actor=actor, patient_id=patient_id,
                             consent_id=consent_id, data=data)
    except (InvalidInput, UnsupportedMediaType, PayloadTooLarge) as exc:
        # (A version withdrawn or superseded meanwhile is a plain 409 page: the form is gone from the page.)
        problems = exc.fields or [FieldProblem("/file", _MEDIA_JA if isinstance(exc, UnsupportedMediaType)
                                               else _SIZE_JA, exc.detail)]
        _reject(session, actor, _page(request, session, keyring, actor, patient_id, errors=problems,
                                      sent="scan", status=exc.status))
    return RedirectResponse(f"/patients/{patient_id}/consents?done=consent_scan_attached", status_code=303)


_MEDIA_JA = "PDF・JPEG・PNG のファイルを選んでください"
_SIZE_JA = "ファイルが大きすぎます"
