"""Sheet data that fills every field of a schema, and what a reader must find on paper for it.

Walking the JSON Schema (not a hand-written example) is what makes the print test complete: a field the
form template forgets shows up as a missing value. Every property is filled, arrays get one item, booleans
are true, and each enum option is chosen once across the instances of a sheet (single choices take option
i in instance i; multiple choices take all options, in chunks when maxItems is smaller).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from renkei.printing.forms import FormBuilder
from renkei.sheets.registry import SheetDef

# Fields the platform owns (replaced or dropped whatever the client sends).
PLATFORM_OWNED = {"admission-info": ("/header/provided_at",), "acp": ("/status",)}
FIRST_DAY = date(2019, 1, 7)


@dataclass
class Instance:
    data: dict[str, Any]
    texts: list[str] = field(default_factory=list)  # flat strings that must appear in the PDF text
    checked: list[tuple[str, str]] = field(default_factory=list)  # (pointer, option label) ticked
    true_booleans: list[str] = field(default_factory=list)


class Generator:
    """One sheet's instances; ids of a real attachment and entry of the patient fill the reference fields
    (a field that names the sheet it refers to, `x-entry-sheet`, gets an entry of that sheet)."""

    def __init__(self, builder: FormBuilder, sheet: SheetDef, *, attachment_id: uuid.UUID,
                 entry_id: uuid.UUID, entries_by_sheet: dict[str, str] | None = None) -> None:
        self.builder, self.sheet = builder, sheet
        self.attachment_id, self.entry_id = str(attachment_id), str(entry_id)
        self.entries_by_sheet = dict(entries_by_sheet or {})
        self.counter = 0

    def resolve(self, schema: dict[str, Any], doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.builder.resolve(schema, doc)

    def count(self) -> int:
        """How many instances it takes to choose every enum option once."""
        return max(1, self._count(self.sheet.schema, self.sheet.schema))

    def _count(self, schema: dict[str, Any], doc: dict[str, Any]) -> int:
        schema, doc = self.resolve(schema, doc)
        if "enum" in schema:
            return len(schema["enum"])
        if schema.get("type") == "object":
            return max([self._count(s, doc) for s in schema.get("properties", {}).values()] or [1])
        if schema.get("type") == "array":
            items, items_doc = self.resolve(schema.get("items", {}), doc)
            if "enum" in items:
                return math.ceil(len(items["enum"]) / (schema.get("maxItems") or len(items["enum"])))
            return self._count(items, items_doc)
        return 1

    def instances(self) -> list[dict[str, Any]]:
        return [self.value(self.sheet.schema, self.sheet.schema, "", i) for i in range(self.count())]

    def value(self, schema: dict[str, Any], doc: dict[str, Any], path: str, i: int) -> Any:
        schema, doc = self.resolve(schema, doc)
        kind = schema.get("type")
        self.counter += 1
        n = self.counter
        if "enum" in schema:
            return schema["enum"][i % len(schema["enum"])]
        if kind == "object":
            return {k: self.value(s, doc, f"{path}/{k}", i) for k, s in schema.get("properties", {}).items()
                    if f"{path}/{k}" not in PLATFORM_OWNED.get(self.sheet.id, ())}
        if kind == "array":
            items, items_doc = self.resolve(schema.get("items", {}), doc)
            if "enum" in items:
                size = schema.get("maxItems") or len(items["enum"])
                chunks = [items["enum"][k:k + size] for k in range(0, len(items["enum"]), size)]
                return list(chunks[i % len(chunks)])
            if items.get("format") == "uuid":
                return [self.attachment_id]
            return [self.value(items, items_doc, f"{path}/0", i)]
        if kind == "boolean":
            return True
        if kind == "integer":
            low, high = schema.get("minimum", 0), schema.get("maximum", 999)
            return low + (n * 7) % (high - low + 1)
        if kind == "number":
            low, high = schema.get("minimum", 0), schema.get("maximum", 999)
            return round(low + (high - low) * 0.37, 1)
        fmt = schema.get("format")
        if fmt == "date":
            return (FIRST_DAY + timedelta(days=n)).isoformat()
        if fmt == "date-time":
            return f"{(FIRST_DAY + timedelta(days=n)).isoformat()}T09:{n % 60:02d}:00+09:00"
        if fmt == "uuid":
            return self.entries_by_sheet.get(schema.get("x-entry-sheet", ""), self.entry_id)
        if "pattern" in schema:  # phone numbers
            return f"03-{n // 10000:04d}-{n % 10000:04d}"
        return f"値{n:04d}記"


def expectations(builder: FormBuilder, sheet: SheetDef, data: dict[str, Any]) -> Instance:
    """What must be printed for `data`: every value as the form formats it, every ticked option's label."""
    form = builder.build(sheet, data)
    out = Instance(data)
    for pointer, f in form._index.items():  # noqa: SLF001 - the test reads the model the template reads
        if f.kind in ("choice", "multi"):
            out.checked += [(pointer, o.label) for o in f.options if o.checked]
        elif f.kind == "bool":
            if f.options[0].checked:
                out.true_booleans.append(pointer)
        elif f.kind == "attachments" and f.text:
            out.texts.append(f"添付{f.text}")
        elif f.kind in ("text", "longtext", "date", "datetime", "number", "ref") and f.text:
            out.texts.append(f.text)
    return out

