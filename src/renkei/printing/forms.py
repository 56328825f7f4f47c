"""Turn a sheet's JSON Schema plus (optional) entry data into a printable form model.

The model is generic: sections from the top-level properties (numbered by `x-section`), every enum
shown with all of its options so a blank form can be ticked by hand, arrays of objects as tables.
Hand-laid templates (the MHLW model forms) pick fields by JSON pointer with `form.at("/a/b")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from renkei.printing.formatting import format_date, format_datetime, format_number
from renkei.sheets.registry import SheetDef, SheetRegistry

LONGTEXT_MIN = 1000  # strings allowed to be this long are printed as a box, not a line
BLANK_TABLE_ROWS = 3
BOOL_OPTIONS = (("true", "はい", "Yes"), ("false", "いいえ", "No"))


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    label_en: str
    checked: bool


@dataclass
class Field:
    """One printable field. `kind` picks the macro that draws it."""

    path: str
    key: str
    title: str
    title_en: str
    kind: str  # text | longtext | date | datetime | number | choice | multi | bool | attachments | ref | group | table
    text: str = ""  # formatted value for scalar kinds; "" when empty
    options: list[Option] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)  # group members
    columns: list[Field] = field(default_factory=list)  # table header (template fields, no values)
    rows: list[list[Field]] = field(default_factory=list)  # table body
    max_items: int | None = None

    @property
    def filled(self) -> bool:
        if self.kind in ("choice", "multi", "bool"):
            return any(o.checked for o in self.options)
        if self.kind == "group":
            return any(c.filled for c in self.children)
        if self.kind == "table":
            return bool(self.rows) and any(c.filled for row in self.rows for c in row)
        return bool(self.text)

    def child(self, key: str) -> Field:
        for c in self.children:
            if c.key == key:
                return c
        raise KeyError(f"{self.path} has no field {key!r}")


@dataclass
class Section:
    number: str | None
    title: str | None
    title_en: str | None
    path: str
    fields: list[Field]


@dataclass
class FormModel:
    sheet_id: str
    version: int
    title: str
    title_en: str
    category: str
    sections: list[Section]
    blank: bool
    _index: dict[str, Field] = field(default_factory=dict, repr=False)

    def at(self, pointer: str) -> Field:
        """The field at a JSON pointer such as "/basic/care_level"; KeyError if the schema has none."""
        try:
            return self._index[pointer]
        except KeyError:
            raise KeyError(f"{self.sheet_id}/{self.version} has no field {pointer!r}") from None

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.path == "/" + key:
                return s
        raise KeyError(f"{self.sheet_id}/{self.version} has no section {key!r}")


class FormBuilder:
    """Builds form models from the sheet registry; one per application."""

    def __init__(self, registry: SheetRegistry) -> None:
        self.registry = registry

    def build(self, sheet: SheetDef, data: dict[str, Any] | None, *, blank_rows: int = BLANK_TABLE_ROWS) -> FormModel:
        """The form for `sheet` filled with `data`, or blank (every option unticked) when data is None."""
        index: dict[str, Field] = {}
        builder = _Walk(self, sheet.schema, index, blank_rows if data is None else 0)
        sections: list[Section] = []
        loose: list[Field] = []
        root = data or {}
        for key, sub in sheet.schema.get("properties", {}).items():
            schema, doc = builder.resolve(sub, sheet.schema)
            built = builder.field(schema, doc, "/" + _escape(key), key, root.get(key))
            if built.kind == "group":
                if loose:
                    sections.append(Section(None, None, None, "", loose))
                    loose = []
                sections.append(Section(schema.get("x-section"), built.title, built.title_en, built.path,
                                        built.children))
            elif built.kind == "table":
                if loose:
                    sections.append(Section(None, None, None, "", loose))
                    loose = []
                sections.append(Section(schema.get("x-section"), built.title, built.title_en, built.path,
                                        [built]))
            else:
                loose.append(built)
        if loose:
            sections.append(Section(None, None, None, "", loose))
        return FormModel(sheet.id, sheet.version, sheet.title, sheet.title_en, sheet.category, sections,
                         data is None, index)

    def resolve(self, schema: dict[str, Any], doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Follow $ref; the referring schema's own keywords (its title, mostly) win over the target's."""
        while "$ref" in schema:
            target, _, fragment = schema["$ref"].partition("#")
            if target:
                doc = self.document(urljoin(doc["$id"], target))
            node: Any = doc
            for token in [t for t in fragment.split("/") if t]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema, doc

    def document(self, uri: str) -> dict[str, Any]:
        """A schema document by its absolute $id: a sheet, or a shared definitions file."""
        parts = urlsplit(uri).path.rstrip("/").split("/")
        name, version = parts[-2], int(parts[-1].removesuffix(".json"))
        if name.startswith("_"):
            return self.registry.shared(name, version)
        return self.registry.get(name, version).schema


class _Walk:
    def __init__(self, owner: FormBuilder, root: dict[str, Any], index: dict[str, Field], blank_rows: int) -> None:
        self.owner = owner
        self.root = root
        self.index = index
        self.blank_rows = blank_rows

    def resolve(self, schema: dict[str, Any], doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.owner.resolve(schema, doc)

    def field(self, schema: dict[str, Any], doc: dict[str, Any], path: str, key: str, value: Any,
              *, register: bool = True) -> Field:
        title = schema.get("title", key)
        f = Field(path=path, key=key, title=title, title_en=schema.get("x-title-en", title), kind="text")
        kind = schema.get("type")
        if "enum" in schema:
            f.kind = "choice"
            f.options = _options(schema, {value} if value is not None else set())
        elif kind == "boolean":
            f.kind = "bool"
            f.options = [Option(v, ja, en, value is (v == "true")) for v, ja, en in BOOL_OPTIONS]
        elif kind == "object":
            f.kind = "group"
            values = value if isinstance(value, dict) else {}
            for child_key, sub in schema.get("properties", {}).items():
                child_schema, child_doc = self.resolve(sub, doc)
                f.children.append(self.field(child_schema, child_doc, f"{path}/{_escape(child_key)}", child_key,
                                             values.get(child_key), register=register))
        elif kind == "array":
            self._array(f, schema, doc, value, register=register)
        elif kind in ("integer", "number"):
            f.kind = "number"
            f.text = format_number(value)
        elif schema.get("format") == "date":
            f.kind = "date"
            f.text = format_date(date.fromisoformat(value)) if value else ""
        elif schema.get("format") == "date-time":
            f.kind = "datetime"
            f.text = format_datetime(datetime.fromisoformat(value)) if value else ""
        elif schema.get("format") == "uuid":
            f.kind = "ref"
            f.text = "記録あり" if value else ""
        else:
            f.kind = "longtext" if schema.get("maxLength", 0) >= LONGTEXT_MIN else "text"
            f.text = "" if value is None else str(value)
        if register:
            self.index[path] = f
        return f

    def _array(self, f: Field, schema: dict[str, Any], doc: dict[str, Any], value: Any, *, register: bool) -> None:
        items, items_doc = self.resolve(schema.get("items", {}), doc)
        values = value if isinstance(value, list) else []
        f.max_items = schema.get("maxItems")
        if "enum" in items:
            f.kind = "multi"
            f.options = _options(items, set(values))
        elif items.get("format") == "uuid":
            f.kind = "attachments"
            f.text = f"{len(values)}件" if values else ""
        elif items.get("type") == "object":
            f.kind = "table"
            f.columns = [
                self.field(*self.resolve(sub, items_doc), f"{f.path}/-/{_escape(k)}", k, None, register=False)
                for k, sub in items.get("properties", {}).items()
            ]
            rows = values or [None] * min(self.blank_rows, f.max_items or self.blank_rows)
            for i, row in enumerate(rows):
                row_values = row if isinstance(row, dict) else {}
                f.rows.append([
                    self.field(*self.resolve(sub, items_doc), f"{f.path}/{i}/{_escape(k)}", k, row_values.get(k),
                               register=register)
                    for k, sub in items.get("properties", {}).items()
                ])
        else:
            f.kind = "text"
            f.text = "、".join(str(v) for v in values)


def _options(schema: dict[str, Any], chosen: set[Any]) -> list[Option]:
    labels = schema.get("x-enum-labels", {})
    labels_en = schema.get("x-enum-labels-en", {})
    return [
        Option(str(v), labels.get(str(v), str(v)), labels_en.get(str(v), str(v)), v in chosen)
        for v in schema["enum"]
    ]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
