"""JSON API: the standard sheets and their JSON Schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from renkei.auth.dependencies import ActorDep
from renkei.sheets import service
from renkei.sheets.dependencies import SheetsDep
from renkei.web.schemas import ResponseModel

router = APIRouter(tags=["sheets"])


class SheetOut(ResponseModel):
    id: str
    version: int
    title: str
    title_en: str
    category: str
    latest: bool


@router.get("/sheets", response_model=list[SheetOut], summary="The standard sheets")
def list_sheets(actor: ActorDep, sheets: SheetsDep):
    """Every sheet id and version with its Japanese and English title and category."""
    return service.list_sheets(sheets)


@router.get("/sheets/{sheet_id}/{version}", response_model=dict[str, Any], summary="A sheet's JSON Schema")
def get_sheet(actor: ActorDep, sheets: SheetsDep, sheet_id: str = Path(max_length=40),
              version: int = Path(ge=1, le=10_000)):
    """The JSON Schema (draft 2020-12); `_common` serves the shared definitions; 404 unknown_sheet."""
    return service.schema_document(sheets, sheet_id, version)
