"""How values look on Japanese paper: dates, times in JST, numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

# Japan has no daylight saving time, so a fixed offset needs no tz database on the server.
JST = timezone(timedelta(hours=9), "JST")

SEX_LABELS = {"female": "女", "male": "男", "other": "その他", "unknown": "不明"}


def format_date(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(JST) if value.tzinfo else value
    return f"{format_date(local.date())} {local:%H:%M}"


def format_number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
