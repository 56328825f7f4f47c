"""Pages: a patient's timeline with the summary card, and one entry with its fields labelled."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.dependencies import ActorDep, KeyringDep, SettingsDep
from renkei.db.session import SessionDep
from renkei.patients import service as patient_service
from renkei.sheets.dependencies import SheetsDep
from renkei.sheets.registry import SheetRegistry
from renkei.sheets.service import JST
from renkei.timeline import queries, service
from renkei.timeline.schemas import EntryOut, TimelineQuery
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/patients/{patient_id}/timeline")
def timeline_page(patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
                  keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep,
                  cursor: str | None = Query(default=None, max_length=200), unread: bool = False) -> Response:
    """The summary card and one page of the timeline; also the emergency view of a break-the-glass holder."""
    # A break-the-glass grant covers the emergency scope only, not the registration: no identity header then.
    patient = (patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
               if access.can(session, actor, Action.read_registration, patient_id) else None)
    page = queries.timeline(session, keyring=keyring, settings=settings, actor=actor,
                            patient_id=patient_id, query=TimelineQuery(cursor=cursor, unread=unread))
    summary = queries.summary(session, keyring=keyring, settings=settings, actor=actor,
                              patient_id=patient_id)
    return render(request, "timeline.html", page_context(
        request, session, actor, patient=patient, patient_id=patient_id, page=page, summary=summary,
        unread=unread, titles=_titles(sheets), jst=_jst,
    ))


@router.get("/entries/{entry_id}")
def entry_page(entry_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep,
               keyring: KeyringDep, settings: SettingsDep, sheets: SheetsDep) -> Response:
    """One entry, every filled field with its Japanese (or English) label; opening it marks it read."""
    entry, _ = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=entry_id)
    return render(request, "entry.html", page_context(
        request, session, actor, entry=entry, titles=_titles(sheets), fields=_fields(sheets, entry), jst=_jst,
    ))


def _jst(moment: datetime | None) -> str:
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M") if moment else ""


def _titles(sheets: SheetRegistry) -> dict[str, tuple[str, str]]:
    return {s.id: (s.title, s.title_en) for s in sheets.all()}


def _fields(sheets: SheetRegistry, entry: EntryOut) -> list[dict[str, Any]]:
    """Flatten the data to (depth, ja label, en label, value) rows in the schema's order of entry."""
    rows: list[dict[str, Any]] = []

    def walk(node: Any, pointer: str, depth: int) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                add(value, f"{pointer}/{key}", depth)
        elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
            for i, value in enumerate(node):
                add(value, f"{pointer}/{i}", depth)

    def add(value: Any, pointer: str, depth: int) -> None:
        try:
            ja, en = sheets.field_label(entry.sheet, entry.sheet_version, pointer)
        except KeyError:
            ja = en = pointer.rsplit("/", 1)[-1]
        nested = isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict))
        shown = "" if nested else "、".join(map(str, value)) if isinstance(value, list) else value
        rows.append({"depth": depth, "ja": ja, "en": en, "value": shown})
        if nested:
            walk(value, pointer, depth + 1)

    walk(entry.data, "", 0)
    return rows
