"""Pages: choose a sheet, fill in the form generated from its JSON Schema (new, draft, amendment).

The pages only render; the browser posts the form's JSON to the API (`/api/v1/patients/{id}/entries`,
`/api/v1/entries/{id}/amend`) with an Idempotency-Key made once per form, so a retry after a dropped
network cannot post twice, and the API's field errors are shown next to the fields they name.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.auth.service import Actor
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.errors import NotFound
from renkei.patients import service as patient_service
from renkei.sheets import service as sheet_service
from renkei.sheets.dependencies import SheetsDep
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.timeline import queries, service
from renkei.timeline.exceptions import EntryEnteredInError, EntryNotCurrent, NotAuthor
from renkei.timeline.pages import form_nodes, view_helpers
from renkei.timeline.schemas import EntryOut
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)


def _recipient_choices(session: Session, actor: Actor, patient_id: uuid.UUID) -> dict[str, Any]:
    """Today's team members (not me) and their offices (not mine), the addressees a sheet may have."""
    team = patient_service.list_team(session, actor=actor, patient_id=patient_id, include_ended=False)
    members = [m for m in team if m["active"] and m["user_id"] != actor.user_id]
    offices: dict[uuid.UUID, str] = {}
    for m in members:
        if m["organisation_id"] != actor.organisation_id:
            offices.setdefault(m["organisation_id"], m["organisation_name"])
    return {"members": members, "offices": offices}


def _writable(session: Session, actor: Actor, patient_id: uuid.UUID, sheets: SheetRegistry) -> list[SheetDef]:
    newest = [s for s in sheets.all() if s.version == sheets.latest(s.id).version]
    return [s for s in newest
            if access.can(session, actor, Action.write_clinical, patient_id, category=s.category,
                          sheet_id=s.id).allowed]


def _form(request: Request, session: Session, keyring: Keyring, actor: Actor, sheets: SheetRegistry, *,
          patient_id: uuid.UUID, sheet: SheetDef, mode: str, entry: EntryOut | None = None,
          etag: str = "") -> Response:
    access.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                   sheet_id=sheet.id, targets=[entry.id] if entry else [], event="entry.form")
    patient = patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    chosen = {str(r.user_id or r.organisation_id) for r in entry.recipients} if entry else set()
    return render(request, "entry_form.html", page_context(
        request, session, actor, patient=patient, sheet=sheet, mode=mode, entry=entry, etag=etag,
        nodes=form_nodes(sheets, sheet.id, sheet.version), prefill=entry.data if entry else {},
        chosen=chosen, urgent=bool(entry and entry.priority == "urgent"),
        **_recipient_choices(session, actor, patient_id), **view_helpers(sheets),
    ))


@router.get("/patients/{patient_id}/entries/new")
def new_entry_page(
    patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    settings: SettingsDep, sheets: SheetsDep, sheet: Annotated[str, Query(max_length=40)] = "",
    draft: uuid.UUID | None = None,
) -> Response:
    """Without `sheet`: the sheets I may write and my drafts. With it (or a draft): the form."""
    if draft is not None:
        entry, etag = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=draft)
        if entry.patient_id != patient_id or entry.status != "draft":
            raise NotFound()
        return _form(request, session, keyring, actor, sheets, patient_id=patient_id, mode="draft",
                     sheet=sheets.get(entry.sheet, entry.sheet_version), entry=entry, etag=etag)
    if sheet:
        return _form(request, session, keyring, actor, sheets, patient_id=patient_id, mode="new",
                     sheet=sheet_service.resolve(sheets, sheet, None))
    drafts = queries.drafts(session, keyring=keyring, settings=settings, actor=actor, patient_id=patient_id)
    patient = patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    return render(request, "entry_choose.html", page_context(
        request, session, actor, patient=patient, drafts=drafts,
        writable=_writable(session, actor, patient_id, sheets), tab="new", **view_helpers(sheets),
    ))


@router.get("/entries/{entry_id}/amend")
def amend_page(entry_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
               keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep) -> Response:
    """The form filled with the current version, plus the reason for the amendment (訂正理由)."""
    entry, etag = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)
    if entry.author.user_id != actor.user_id:
        raise NotAuthor()
    if entry.status == "entered_in_error":
        raise EntryEnteredInError()
    if not entry.is_current or entry.status != "final":
        raise EntryNotCurrent()
    return _form(request, session, keyring, actor, sheets, patient_id=entry.patient_id, mode="amend",
                 sheet=sheets.get(entry.sheet, entry.sheet_version), entry=entry, etag=etag)
