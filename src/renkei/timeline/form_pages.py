"""Pages: choose a sheet, fill in the form generated from its JSON Schema (new, draft, amendment).

The pages only render; the browser posts the form's JSON to the API (`/api/v1/patients/{id}/entries`,
`/api/v1/entries/{id}/amend`) with an Idempotency-Key made once per form, so a retry after a dropped
network cannot post twice, and the API's field errors are shown next to the fields they name.

Every form carries a file field for the entry itself (`attachment_ids`); parts of the sheet the author's
consent does not cover are left out of it; a field that refers to an entry of one sheet (the current ACP)
is a choice among the patient's entries of that sheet.
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
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import SessionDep
from renkei.errors import NotFound
from renkei.patients import service as patient_service
from renkei.sheets import service as sheet_service
from renkei.sheets.dependencies import SheetsDep
from renkei.sheets.registry import SheetDef, SheetRegistry
from renkei.sheets import subtrees
from renkei.timeline import paper, queries, service, views
from renkei.timeline.exceptions import EntryEnteredInError, EntryNotCurrent, NotAuthor
from renkei.timeline.pages import form_nodes, jst, view_helpers
from renkei.timeline.schemas import MAX_ATTACHMENTS, EntryOut, TimelineQuery
from renkei.web.pages import page_context
from renkei.web.schema_form import FormNode, prune
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


ENTRY_FILES = FormNode(
    "attachments", pointer="/attachment_ids", ja="添付ファイル（写真・スキャン・PDF）",
    en="Attachments (photos, scans, PDFs)", help_ja="この記録に添付する写真や書類です（20件まで）",
    help_en="Photos and documents this entry carries (up to 20)", max_items=MAX_ATTACHMENTS, envelope=True,
)


def _walk(nodes: list[FormNode]) -> list[FormNode]:
    out = []
    for node in nodes:
        out.append(node)
        out += _walk(node.children) + (_walk(node.item.children) if node.item else [])
    return out


def _entry_choices(
    session: Session, keyring: Keyring, settings: Settings, actor: Actor, patient_id: uuid.UUID,
    nodes: list[FormNode], prefill: dict[str, Any], mode: str,
) -> dict[str, list[dict[str, Any]]]:
    """For fields that refer to an entry of one sheet: the patient's entries of it, current first, with
    date and author; the current one chosen on a new form, and a prefilled entry kept as a choice."""
    refs = [n for n in _walk(nodes) if n.kind == "entry_ref" and n.entry_sheet]
    choices: dict[str, list[dict[str, Any]]] = {}
    for sheet_id in sorted({n.entry_sheet for n in refs if n.entry_sheet}):
        page = queries.timeline(session, keyring=keyring, settings=settings, actor=actor,
                                patient_id=patient_id, query=TimelineQuery(kind=[sheet_id], limit=50))
        items = sorted((e for e in page.items if e.status == "final"), key=lambda e: not e.acp_current)
        choices[sheet_id] = [{
            "id": str(e.id), "selected": mode == "new" and bool(e.acp_current),
            "label_ja": f"{e.data.get('record_date') or jst(e.record_posted_at)} {e.author.name}"
                        + ("（現在の記録）" if e.acp_current else ""),
            "label_en": f"{e.data.get('record_date') or jst(e.record_posted_at)} {e.author.name}"
                        + (" (current)" if e.acp_current else ""),
        } for e in items]
    for node in refs:
        for _, value in subtrees.select(prefill, node.pointer):
            options = choices.setdefault(node.entry_sheet or "", [])
            if isinstance(value, str) and value not in {o["id"] for o in options}:
                options.append({"id": value, "selected": False, "label_ja": "（一覧にない記録）",
                                "label_en": "(an entry not listed)"})
    return choices


def _form(request: Request, session: Session, keyring: Keyring, settings: Settings, actor: Actor,
          sheets: SheetRegistry, *, patient_id: uuid.UUID, sheet: SheetDef, mode: str,
          entry: EntryOut | None = None, etag: str = "", paper_source: EntryOut | None = None) -> Response:
    decision = access.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                              sheet_id=sheet.id, targets=[entry.id] if entry else [], event="entry.form")
    patient = patient_service.get(session, keyring=keyring, actor=actor, patient_id=patient_id)
    chosen = {str(r.user_id or r.organisation_id) for r in entry.recipients} if entry else set()
    hidden = [s.pattern
              for s in views.withheld_subtrees(sheets, sheet.id, sheet.version, decision.categories)]
    nodes = prune(form_nodes(sheets, sheet.id, sheet.version), hidden)
    prefill = entry.data if entry else {}
    return render(request, "entry_form.html", page_context(
        request, session, actor, patient=patient, sheet=sheet, mode=mode, entry=entry, etag=etag,
        nodes=nodes, prefill=prefill, files=ENTRY_FILES,
        prefill_files=[str(a.id) for a in entry.attachments] if entry else [],
        withheld=[sheets.field_label(sheet.id, sheet.version, p.replace("*", "0")) for p in hidden],
        entry_choices=_entry_choices(session, keyring, settings, actor, patient_id, nodes, prefill, mode),
        chosen=chosen, urgent=bool(entry and entry.priority == "urgent"), paper_source=paper_source,
        **_recipient_choices(session, actor, patient_id), **view_helpers(sheets),
    ))


@router.get("/patients/{patient_id}/entries/new")
def new_entry_page(
    patient_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, keyring: KeyringDep,
    settings: SettingsDep, sheets: SheetsDep, sheet: Annotated[str, Query(max_length=40)] = "",
    draft: uuid.UUID | None = None, version: Annotated[int | None, Query(ge=1, le=999)] = None,
    paper_intake_id: uuid.UUID | None = None,
) -> Response:
    """Without `sheet`: the sheets I may write and my drafts. With it (or a draft): the form; with
    `paper_intake_id`, the form transcribes that paper form (its sheet version, its image alongside)."""
    if draft is not None:
        entry, etag = service.get_entry(session, keyring=keyring, settings=settings, actor=actor, entry_id=draft)
        if entry.patient_id != patient_id or entry.status != "draft":
            raise NotFound()
        return _form(request, session, keyring, settings, actor, sheets, patient_id=patient_id,
                     mode="draft", sheet=sheets.get(entry.sheet, entry.sheet_version), entry=entry, etag=etag)
    if sheet:
        source = None
        if paper_intake_id is not None:
            source_id = paper.paper_entry_id(session, patient_id, paper_intake_id)
            if source_id is None:
                raise NotFound()
            source, _ = service.get_entry(session, keyring=keyring, settings=settings, actor=actor,
                                          entry_id=source_id)
        return _form(request, session, keyring, settings, actor, sheets, patient_id=patient_id, mode="new",
                     sheet=sheet_service.resolve(sheets, sheet, version), paper_source=source)
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
    return _form(request, session, keyring, settings, actor, sheets, patient_id=entry.patient_id,
                 mode="amend", sheet=sheets.get(entry.sheet, entry.sheet_version), entry=entry, etag=etag)
