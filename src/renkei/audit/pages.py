"""Page: the region administrator's audit search (監査ログ検索)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from renkei.audit import service
from renkei.audit.dependencies import RegionAdminDep
from renkei.db.session import SessionDep
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/admin/audit")
def audit_page(
    request: Request, actor: RegionAdminDep, session: SessionDep,
    patient_id: Annotated[str, Query(max_length=36)] = "",
    actor_email: Annotated[str, Query(max_length=254)] = "",
    decision: Annotated[str, Query(max_length=5)] = "", before_seq: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Search by patient id or actor email; nothing is listed until one of them is given."""
    errors, events = [], []
    pid = None
    if patient_id:
        try:
            pid = uuid.UUID(patient_id)
        except ValueError:
            errors.append("patient_id")
    if (pid or actor_email) and not errors:
        events = service.admin_search(session, actor=actor, patient_id=pid, actor_email=actor_email or None,
                                      decision=decision if decision in ("allow", "deny") else None,
                                      before_seq=before_seq, limit=100)
    ctx = page_context(request, session, actor, events=events, errors=errors,
                       form={"patient_id": patient_id, "actor_email": actor_email, "decision": decision})
    return render(request, "audit.html", ctx)
