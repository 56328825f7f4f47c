"""Page: audit search (監査ログ検索) for region administrators (everything) and organisation administrators
(their own staff's actions)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from renkei.audit import queries
from renkei.audit.dependencies import AuditorDep
from renkei.db.session import SessionDep
from renkei.db.types import plausible_day
from renkei.web.i18n import catalogue, lang_of
from renkei.web.pages import page_context
from renkei.web.templating import render

router = APIRouter(include_in_schema=False)
JST = ZoneInfo("Asia/Tokyo")
PAGE = 100
_ACTION_LABEL = "audit_action_"


def _uuid(value: str, name: str, errors: list[str]) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors.append(name)
        return None


def _day(value: str, name: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(name)
        return None
    if not plausible_day(day):  # 0001-01-01 or 9999-12-31 would overflow in the JST range below
        errors.append(name)
        return None
    return day


def _jst_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JST)


@router.get("/admin/audit")
def audit_page(
    request: Request, actor: AuditorDep, session: SessionDep,
    patient_id: Annotated[str, Query(max_length=36)] = "",
    actor_email: Annotated[str, Query(max_length=254)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    decision: Annotated[str, Query(max_length=5)] = "",
    since: Annotated[str, Query(max_length=10)] = "", until: Annotated[str, Query(max_length=10)] = "",
    grant_id: Annotated[str, Query(max_length=36)] = "",
    before_seq: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Search by patient, staff email, action, decision, dates (JST, both inclusive) or emergency access;
    nothing is listed until one of them is given."""
    errors: list[str] = []
    pid, gid = _uuid(patient_id, "patient_id", errors), _uuid(grant_id, "grant_id", errors)
    first, last = _day(since, "since", errors), _day(until, "until", errors)
    if first and last and last < first:
        errors.append("until")
    labels = catalogue(lang_of(request))
    actions = sorted(k.removeprefix(_ACTION_LABEL) for k in labels if k.startswith(_ACTION_LABEL))
    action = action if action in actions else ""
    form = {"patient_id": patient_id, "actor_email": actor_email, "action": action,
            "decision": decision if decision in ("allow", "deny") else "", "since": since, "until": until,
            "grant_id": grant_id}
    events: list[dict[str, Any]] = []
    searched = any(form.values()) and not errors
    if searched:
        events = queries.admin_search(
            session, actor=actor, patient_id=pid, actor_email=actor_email or None, action=action or None,
            decision=form["decision"] or None, since=_jst_midnight(first) if first else None,
            until=_jst_midnight(last + timedelta(days=1)) if last else None, grant_id=gid,
            before_seq=before_seq, limit=PAGE)
    ctx = page_context(request, session, actor, events=events, errors=errors, form=form, actions=actions,
                       searched=searched, page_size=PAGE, own_staff_only=not actor.is_region_admin)
    return render(request, "audit.html", ctx)
