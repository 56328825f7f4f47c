"""Pages: my patients, a patient's page (status card + timeline), one entry, and the addressed sheets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.db.types import today_jst
from renkei.directory.models import Profession
from renkei.errors import InvalidInput
from renkei.patients import service as patient_service
from renkei.sheets.dependencies import SheetsDep
from renkei.sheets.registry import SheetRegistry
from renkei.sheets.service import JST
from renkei.timeline import addressed as addressed_lists
from renkei.timeline import queries, service
from renkei.timeline.schemas import EntryOut, TimelineQuery
from renkei.web.pages import page_context
from renkei.web.schema_form import FormNode, build_form, describe
from renkei.web.templating import render
from renkei.web.validation import problems_from_errors

router = APIRouter(include_in_schema=False)

# Kind marks of the timeline: a one-character symbol and a colour class per sheet (see app.css).
SHEET_MARKS = {
    "admission-info": "入", "discharge-info": "退", "emergency-info": "急", "acp": "意",
    "physician-visit": "診", "care-note": "療", "message": "連",
}


def jst(moment: datetime | None) -> str:
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M") if moment else ""


def titles(sheets: SheetRegistry) -> dict[str, tuple[str, str]]:
    return {s.id: (s.title, s.title_en) for s in sheets.all()}


def fetcher(sheets: SheetRegistry):  # noqa: ANN201 - a schema_form.Fetch
    """Look schema documents up by `$id` (sheets and shared definitions such as _common/1.json)."""
    def fetch(uri: str) -> dict[str, Any]:
        *_, name, file = urlsplit(uri).path.split("/")
        version = int(file.removesuffix(".json"))
        return sheets.shared(name, version) if name.startswith("_") else sheets.get(name, version).schema
    return fetch


def form_nodes(sheets: SheetRegistry, sheet_id: str, version: int) -> list[FormNode]:
    return build_form(sheets.get(sheet_id, version).schema, fetcher(sheets))


def view_helpers(sheets: SheetRegistry) -> dict[str, Any]:
    return {"titles": titles(sheets), "marks": SHEET_MARKS, "jst": jst}


# -- my patients -----------------------------------------------------------------------------


@router.get("/patients")
def patients_page(request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                  settings: SettingsDep) -> Response:
    """My patients with unread counts, urgent and unacknowledged flags. The name filter runs in the page's
    script only: a name in the URL would stay in the browser history of a shared tablet."""
    patients = patient_service.list_mine(session, keyring=keyring, actor=actor)
    flags = addressed_lists.patient_flags(session, settings=settings, actor=actor)
    empty = addressed_lists.PatientFlags()
    # Patients with something to act on come first; within each group the kana order of the list stays.
    patients.sort(key=lambda p: (-(flags.get(p.id, empty).urgent_unread > 0),
                                 -(flags.get(p.id, empty).overdue > 0),
                                 -(flags.get(p.id, empty).awaiting_my_ack > 0)))
    # Where a name leads: the timeline, or the registration page while no consent lets the team share.
    readable = {p.id for p in patients if access.can(session, actor, Action.read_clinical, p.id).allowed}
    return render(request, "patients.html", page_context(
        request, session, actor, patients=patients, flags=flags, empty_flags=empty, readable=readable,
        may_register=patient_service.may_register(actor)))


# -- a patient's page ------------------------------------------------------------------------


def _timeline_query(request: Request, sheets: SheetRegistry, cursor: str | None,
                    unread: bool) -> tuple[TimelineQuery, dict[str, Any]]:
    params = request.query_params
    raw = {"cursor": cursor, "unread": unread, "kind": params.getlist("kind"),
           "profession": params.getlist("profession"),
           "since": params.get("since") or None, "until": params.get("until") or None}
    try:
        query = TimelineQuery.model_validate({k: v for k, v in raw.items() if v not in (None, [])})
    except ValidationError as exc:
        raise InvalidInput(fields=problems_from_errors(exc.errors())) from exc
    queries.check_kinds(sheets, query)
    return query, raw


def _patient_page(request: Request, session: Session, keyring: Keyring, settings: Settings,
                  sheets: SheetRegistry, actor: Actor, patient_id: uuid.UUID, *, cursor: str | None,
                  unread: bool) -> Response:
    query, raw = _timeline_query(request, sheets, cursor, unread)
    registration = access.can(session, actor, Action.read_registration, patient_id).allowed
    patient = (patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
               if registration else None)
    # Without clinical access (no consent in force, a break-the-glass grant only) these raise 404 or show
    # the emergency scope alone; the identity header is shown only to readers of the registration.
    page = queries.timeline(session, keyring=keyring, settings=settings, actor=actor,
                            patient_id=patient_id, query=query)
    summary = queries.summary(session, keyring=keyring, settings=settings, actor=actor, patient_id=patient_id)
    filtered = bool(query.kind or query.profession or query.since or query.until or query.unread)
    writable = any(
        access.can(session, actor, Action.write_clinical, patient_id, category=s.category, sheet_id=s.id)
        for s in sheets.all())
    return render(request, "timeline.html", page_context(
        request, session, actor, patient=patient, patient_id=patient_id, page=page, summary=summary,
        filters=raw, filtered=filtered, unread=query.unread, writable=writable,
        sheet_list=[s for s in sheets.all() if s.version == sheets.latest(s.id).version],
        professions=[p.value for p in Profession], tab="timeline", **view_helpers(sheets),
    ))


@router.get("/patients/{patient_id}/timeline")
def timeline_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                  keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep,
                  cursor: Annotated[str | None, Query(max_length=200)] = None, unread: bool = False) -> Response:
    """The patient page: status card, then the filtered timeline; a break-the-glass holder's emergency view."""
    return _patient_page(request, session, keyring, settings, sheets, actor, patient_id, cursor=cursor,
                         unread=unread)


# -- one entry -------------------------------------------------------------------------------


def _can_acknowledge(actor: Actor, entry: EntryOut) -> bool:
    return entry.is_current and entry.status == "final" and any(
        r.acknowledged_at is None and (r.user_id == actor.user_id or (
            r.user_id is None and r.organisation_id == actor.organisation_id))
        for r in entry.recipients)


@router.get("/entries/{entry_id}")
def entry_page(entry_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
               keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep) -> Response:
    """One entry with every filled field labelled, its versions, receipts and what I may do with it."""
    entry, etag = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)
    versions = service.history(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)
    mine = entry.author.user_id == actor.user_id
    return render(request, "entry.html", page_context(
        request, session, actor, entry=entry, etag=etag, versions=versions,
        rows=describe(form_nodes(sheets, entry.sheet, entry.sheet_version), entry.data),
        withheld=[sheets.field_label(entry.sheet, entry.sheet_version, p) for p in entry.withheld],
        can_acknowledge=_can_acknowledge(actor, entry),
        can_amend=mine and entry.is_current and entry.status == "final",
        can_mark_error=mine and entry.is_current and entry.status in ("final", "draft"),
        can_transcribe=bool(entry.paper and entry.paper.transcribed_entry_id is None and entry.is_current
                            and entry.status == "final" and access.can(
                                session, actor, Action.write_clinical, entry.patient_id,
                                category=entry.category, sheet_id=entry.sheet)),
        today=today_jst(), **view_helpers(sheets),
    ))


# -- addressed sheets ------------------------------------------------------------------------


@router.get("/addressed")
def addressed_page(request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
                   settings: SettingsDep, sheets: SheetsDep,
                   show: Annotated[str, Query(max_length=10)] = "received") -> Response:
    """Sheets sent to me or my office (with the acknowledge button), and the ones I sent, overdue marked."""
    lists = addressed_lists.addressed(session, keyring=keyring, settings=settings, actor=actor)
    show = "sent" if show == "sent" else "received"
    return render(request, "addressed.html", page_context(
        request, session, actor, lists=lists, show=show, **view_helpers(sheets)))
