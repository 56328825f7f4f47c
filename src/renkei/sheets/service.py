"""Sheet lookup and validation for the API: JSON Schema first, then the checks a schema cannot express."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from renkei.errors import FieldProblem, InvalidInput, NotFound
from renkei.sheets import subtrees
from renkei.sheets.registry import FieldError, SheetDef, SheetRegistry

JST = ZoneInfo("Asia/Tokyo")
# Tablet clocks drift; a time a few minutes ahead of the server is not a typo.
CLOCK_SKEW = timedelta(minutes=10)

NOT_FUTURE = ("未来の日付・時刻は入力できません", "Must not be in the future")
NOT_BEFORE = ("{other}より前の日付は入力できません", "Must not be before {other_en}")

# Dates that record something that has already happened ("*" matches any list index).
PAST_ONLY: dict[str, tuple[str, ...]] = {
    "acp": ("/record_date",),
    "admission-info": ("/header/record_date",),
    "care-note": ("/excretion/last_bowel_movement",),
    "discharge-info": ("/header/record_date", "/contact_log/*/date"),
    "emergency-info": ("/diseases/*/since", "/resuscitation/acp_date", "/event/found_at",
                       "/event/last_seen_well_at"),
    "physician-visit": ("/visit_date",),
}

# (later, earlier): the later date may not precede the earlier one.
ORDERED: dict[str, tuple[tuple[str, str], ...]] = {
    "acp": (("/next_review_date", "/record_date"),),
    "discharge-info": (("/admission/planned_discharge_date", "/admission/admission_date"),),
    "physician-visit": (("/next_visit_date", "/visit_date"),),
}


class UnknownSheet(NotFound):
    code = "unknown_sheet"
    detail_default = "Unknown sheet or version"


_loaded: dict[tuple[Path, tuple[tuple[str, int, int], ...]], SheetRegistry] = {}
_load_lock = threading.Lock()


def load_registry(directory: Path) -> SheetRegistry:
    """Load schemas/ (SheetSchemaError names a broken file), reusing the last load while no file changed."""
    # Compiling every validator costs more than the rest of start-up together, and tests build an app each.
    directory = Path(directory).resolve()
    files = sorted(directory.glob("*/*")) if directory.is_dir() else []
    stamp = tuple((str(p.relative_to(directory)), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _load_lock:
        registry = _loaded.get((directory, stamp))
        if registry is None:
            registry = SheetRegistry.load(directory)
            _loaded.clear()
            _loaded[(directory, stamp)] = registry
        return registry


def registry_for(directory: Path) -> SheetRegistry:
    """The registry loaded from `directory` (loading it the first time): for code that has the settings but
    not the application's registry at hand, such as the timeline's readers called from other domains."""
    registry = _by_directory.get(directory)
    if registry is None:
        registry = _by_directory[directory] = load_registry(directory)
    return registry


_by_directory: dict[Path, SheetRegistry] = {}


@dataclass(frozen=True)
class SheetSummary:
    id: str
    version: int
    title: str
    title_en: str
    category: str
    latest: bool


def resolve(registry: SheetRegistry, sheet_id: str, version: int | None) -> SheetDef:
    """The sheet definition (the newest version when none is given), or 404 unknown_sheet."""
    try:
        return registry.latest(sheet_id) if version is None else registry.get(sheet_id, version)
    except KeyError:
        raise UnknownSheet() from None


def list_sheets(registry: SheetRegistry) -> list[SheetSummary]:
    """Every sheet version, marking the newest of each id."""
    sheets = registry.all()
    newest = {s.id: registry.latest(s.id).version for s in sheets}
    return [SheetSummary(s.id, s.version, s.title, s.title_en, s.category, newest[s.id] == s.version)
            for s in sheets]


def schema_document(registry: SheetRegistry, sheet_id: str, version: int) -> dict[str, Any]:
    """The JSON Schema of a sheet version, or a shared definitions document such as _common/1."""
    if sheet_id.startswith("_"):
        try:
            return registry.shared(sheet_id, version)
        except KeyError:
            raise UnknownSheet() from None
    return resolve(registry, sheet_id, version).schema


def validate(registry: SheetRegistry, sheet: SheetDef, data: Any, *, pointer_prefix: str = "/data") -> None:
    """Raise 422 listing every failing field (schema and date sense), each under `pointer_prefix`."""
    errors = field_errors(registry, sheet, data)
    if errors:
        raise InvalidInput(
            "The sheet data is invalid",
            fields=[FieldProblem(pointer_prefix + e.path, e.message_ja, e.message_en) for e in errors],
        )


def field_errors(registry: SheetRegistry, sheet: SheetDef, data: Any) -> list[FieldError]:
    """Schema errors plus date-sense errors on fields the schema accepted."""
    errors = registry.validate(sheet.id, sheet.version, data)
    failing = {e.path for e in errors}
    for error in _date_sense(registry, sheet, data):
        if error.path not in failing:
            errors.append(error)
            failing.add(error.path)
    return sorted(errors, key=lambda e: e.path)


def _date_sense(registry: SheetRegistry, sheet: SheetDef, data: Any) -> list[FieldError]:
    out: list[FieldError] = []
    now = datetime.now(JST)
    for pattern in PAST_ONLY.get(sheet.id, ()):
        for path, value in subtrees.select(data, pattern):
            moment = _parse(value)
            if moment is None:
                continue
            too_late = moment > now + CLOCK_SKEW if isinstance(moment, datetime) else moment > now.date()
            if too_late:
                out.append(FieldError(path, *NOT_FUTURE))
    for later, earlier in ORDERED.get(sheet.id, ()):
        late = dict(subtrees.select(data, later))
        early = dict(subtrees.select(data, earlier))
        if not late or not early:
            continue
        late_value, early_value = _parse(late[later]), _parse(early[earlier])
        # Both days or both moments: a date-time typed into a date field is the schema's error to report,
        # and Python cannot order a datetime against a date.
        if (isinstance(late_value, date) and type(late_value) is type(early_value)
                and late_value < early_value):
            ja, en = registry.field_label(sheet.id, sheet.version, earlier)
            out.append(FieldError(later, NOT_BEFORE[0].format(other=ja), NOT_BEFORE[1].format(other_en=en)))
    return out


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse(value: Any) -> date | datetime | None:
    """A date or an aware datetime, or None for anything the schema check reports instead."""
    if not isinstance(value, str):
        return None
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
