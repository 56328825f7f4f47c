"""Care-fee bonuses the sheets must make visible (入院時情報連携加算, 退院・退所加算). Pure functions."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from renkei.timeline.schemas import AdmissionBonus, DischargeBonus

JST = ZoneInfo("Asia/Tokyo")

ADMISSION_LABELS = {"I": "入院時情報連携加算(Ⅰ)", "II": "入院時情報連携加算(Ⅱ)"}
DISCHARGE_LABELS = {
    "I_a": "退院・退所加算(Ⅰ)イ",
    "I_b": "退院・退所加算(Ⅰ)ロ",
    "II_a": "退院・退所加算(Ⅱ)イ",
    "II_b": "退院・退所加算(Ⅱ)ロ",
    "III": "退院・退所加算(Ⅲ)",
}


def jst_today() -> date:
    return datetime.now(JST).date()


def admission_bonus(data: dict[str, Any], provided_at: datetime | None, *, today: date | None = None) -> (
    AdmissionBonus | None
):
    """(I) if provided by the end of the admission day (earlier counts too), (II) within the next two days."""
    raw = (data.get("header") or {}).get("admission_date")
    try:
        admitted = date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        admitted = None
    if admitted is None:
        return None
    deadline_i, deadline_ii = admitted, admitted + timedelta(days=2)
    category: str | None = None
    if provided_at is not None:
        provided_day = provided_at.astimezone(JST).date()
        category = "I" if provided_day <= deadline_i else "II" if provided_day <= deadline_ii else None
        state = "achieved" if category else "missed"
    else:
        state = "pending" if (today or jst_today()) <= deadline_ii else "missed"
    return AdmissionBonus(
        admission_date=admitted, deadline_i=deadline_i, deadline_ii=deadline_ii, provided_at=provided_at,
        category=category, label=ADMISSION_LABELS.get(category or ""), state=state,
    )


def discharge_bonus(data: dict[str, Any]) -> DischargeBonus | None:
    """Ⅰイ 1 contact · Ⅰロ 1 with a conference · Ⅱイ 2+ · Ⅱロ 2 with ≥1 conference · Ⅲ 3 with ≥1 conference."""
    log = data.get("contact_log")
    if not isinstance(log, list) or not log:
        return None
    contacts = len(log)
    conference = any(isinstance(c, dict) and c.get("conference_attended") is True for c in log)
    if contacts >= 3 and conference:
        category = "III"
    elif contacts >= 2:
        category = "II_b" if conference else "II_a"
    else:
        category = "I_b" if conference else "I_a"
    return DischargeBonus(contacts=contacts, conference_attended=conference, category=category,
                          label=DISCHARGE_LABELS[category])
