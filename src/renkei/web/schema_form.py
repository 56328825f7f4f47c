"""Turn a sheet's JSON Schema into a tree of form fields for the entry form template.

Every field is named by the JSON pointer of the value it fills in (`/skin/pressure_ulcer`), so the
browser builds the JSON body from the pointers and the API's field errors land next to their inputs.
Items of repeatable groups use a placeholder index (`/condition/diseases/__i0__/name`) that the
browser replaces when it adds an item; the depth of the placeholder keeps nested groups apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin

# Fetch a schema document by its absolute URI (the sheet registry knows them all).
Fetch = Callable[[str], dict[str, Any]]

# Strings longer than this get a multi-line text area: free text a nurse writes in sentences.
TEXTAREA_FROM = 201
# More choices than this make a radio list too long for a tablet screen; a select is used instead.
MAX_RADIOS = 8


@dataclass
class Choice:
    value: str
    ja: str
    en: str


@dataclass
class FormNode:
    """One field or group. `kind` picks the widget; `pointer` is where its value goes in the data."""

    kind: str
    pointer: str
    ja: str
    en: str
    required: bool = False
    section: str | None = None
    help_ja: str | None = None
    help_en: str | None = None
    # "entry_ref" fields: the sheet whose entries may be chosen (`x-entry-sheet`).
    entry_sheet: str | None = None
    # The files of the entry itself (not of its data): the page script sends them as `attachment_ids`.
    envelope: bool = False
    choices: list[Choice] = field(default_factory=list)
    children: list[FormNode] = field(default_factory=list)
    item: FormNode | None = None
    max_length: int | None = None
    min_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_items: int | None = None
    min_items: int | None = None
    pattern: str | None = None
    depth: int = 0

    @property
    def dom_id(self) -> str:
        """An element id derived from the pointer; placeholders stay in it and are replaced with them."""
        return "f" + self.pointer.replace("/", "-").replace("~", "_")

    @property
    def placeholder(self) -> str:
        """The index placeholder this repeatable group's items use."""
        return f"__i{self.depth}__"


def build_form(schema: dict[str, Any], fetch: Fetch) -> list[FormNode]:
    """The top-level fields of a sheet, in schema order, with `$ref`s followed."""
    base = schema.get("$id", "")
    root = _Resolver(fetch, base)
    resolved, base = root.resolve(schema, base)
    return _children(root, resolved, base, "", 0)


class _Resolver:
    def __init__(self, fetch: Fetch, base: str) -> None:
        self.fetch = fetch
        self.base = base

    def resolve(self, node: dict[str, Any], base: str) -> tuple[dict[str, Any], str]:
        """Follow `$ref` chains; sibling keywords (title, x-title-en) override the target's."""
        seen = 0
        while "$ref" in node and seen < 20:
            seen += 1
            target_uri = urljoin(base, node["$ref"])
            document_uri, fragment = urldefrag(target_uri)
            document = self.fetch(document_uri) if document_uri else self.fetch(base)
            target: Any = document
            for token in [t for t in fragment.split("/") if t]:
                target = target[token.replace("~1", "/").replace("~0", "~")]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
            base = document_uri or base
        return node, base


def _children(resolver: _Resolver, node: dict[str, Any], base: str, pointer: str, depth: int) -> list[FormNode]:
    required = set(node.get("required", []))
    out = []
    for key, child in node.get("properties", {}).items():
        built = _node(resolver, child, base, f"{pointer}/{_escape(key)}", depth)
        if built is not None:
            built.required = key in required
            out.append(built)
    return out


def _node(resolver: _Resolver, raw: dict[str, Any], base: str, pointer: str, depth: int) -> FormNode | None:
    node, base = resolver.resolve(raw, base)
    ja = node.get("title") or pointer.rsplit("/", 1)[-1]
    en = node.get("x-title-en") or ja
    common: dict[str, Any] = {"pointer": pointer, "ja": ja, "en": en, "section": node.get("x-section"),
                              "help_ja": node.get("description"), "help_en": node.get("x-description-en"),
                              "depth": depth}
    kind = node.get("type")
    if kind == "object":
        return FormNode("group", children=_children(resolver, node, base, pointer, depth), **common)
    if kind == "array":
        items, items_base = resolver.resolve(node.get("items", {}), base)
        limits = {"max_items": node.get("maxItems"), "min_items": node.get("minItems")}
        if "enum" in items:
            return FormNode("multi", choices=_choices(items), **limits, **common)
        if items.get("type") == "string" and items.get("format") == "uuid":
            return FormNode("attachments" if pointer.endswith("attachment_ids") else "uuid_list",
                            **limits, **common)
        placeholder = f"__i{depth}__"
        item = _node(resolver, items, items_base, f"{pointer}/{placeholder}", depth + 1)
        if item is None:
            return None
        if item.kind != "group":
            item = FormNode("group", pointer=item.pointer, ja=item.ja, en=item.en, depth=depth + 1,
                            children=[item])
        return FormNode("repeat", item=item, **limits, **common)
    if "enum" in node:
        choices = _choices(node)
        return FormNode("radio" if len(choices) <= MAX_RADIOS else "select", choices=choices, **common)
    if kind == "boolean":
        return FormNode("boolean", **common)
    if kind in ("integer", "number"):
        return FormNode(kind, minimum=node.get("minimum"), maximum=node.get("maximum"), **common)
    if kind == "string":
        fmt = node.get("format")
        lengths = {"max_length": node.get("maxLength"), "min_length": node.get("minLength")}
        if fmt == "date":
            return FormNode("date", **lengths, **common)
        if fmt == "date-time":
            return FormNode("datetime", **common)
        if fmt == "uuid" and isinstance(node.get("x-entry-sheet"), str):
            return FormNode("entry_ref", entry_sheet=node["x-entry-sheet"], **common)
        if fmt == "uuid":
            return FormNode("uuid", **lengths, **common)
        pattern = node.get("pattern")
        if pattern and "0-9+()" in pattern:
            return FormNode("tel", pattern=pattern, **lengths, **common)
        wide = (node.get("maxLength") or TEXTAREA_FROM) >= TEXTAREA_FROM
        return FormNode("textarea" if wide else "text", pattern=pattern, **lengths, **common)
    return None


def prune(nodes: list[FormNode], patterns: list[str]) -> list[FormNode]:
    """The form without the fields the patterns name (JSON pointers, `*` for any item of a list): the parts
    of a sheet the author's consent does not cover."""
    if not patterns:
        return nodes
    kept = []
    for node in nodes:
        if any(_names(node.pointer, pattern) for pattern in patterns):
            continue
        node.children = prune(node.children, patterns)
        if node.item is not None:
            node.item.children = prune(node.item.children, patterns)
        kept.append(node)
    return kept


def _names(pointer: str, pattern: str) -> bool:
    have, want = pointer.split("/"), pattern.split("/")
    return len(have) == len(want) and all(
        w == h or (w == "*" and h.startswith("__i") and h.endswith("__"))
        for h, w in zip(have, want, strict=True))


def _choices(node: dict[str, Any]) -> list[Choice]:
    labels = node.get("x-enum-labels", {})
    labels_en = node.get("x-enum-labels-en", {})
    return [Choice(str(v), labels.get(v, str(v)), labels_en.get(v, labels.get(v, str(v))))
            for v in node.get("enum", [])]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass
class ValueRow:
    """One filled-in field for display: its labels, its value in Japanese and English, photos by id."""

    depth: int
    ja: str
    en: str
    value_ja: str = ""
    value_en: str = ""
    attachment_ids: list[str] = field(default_factory=list)
    heading: bool = False
    entry_id: str | None = None


def describe(nodes: list[FormNode], data: Any) -> list[ValueRow]:
    """The data of an entry as labelled rows in the schema's order; enum codes shown by their labels."""
    rows: list[ValueRow] = []
    _describe(nodes, data if isinstance(data, dict) else {}, 0, rows)
    known = {n.pointer.rsplit("/", 1)[-1] for n in nodes}
    for key, value in (data or {}).items():
        # Fields the platform adds (provided_at, ACP status) or older schema versions carried.
        if key not in known and not isinstance(value, (dict, list)):
            rows.append(ValueRow(0, key, key, str(value), str(value)))
    return rows


def _key(node: FormNode) -> str:
    return node.pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


def _describe(nodes: list[FormNode], data: dict[str, Any], depth: int, rows: list[ValueRow]) -> None:
    for node in nodes:
        key = _key(node)
        if key not in data:
            continue
        value = data[key]
        if node.kind == "group" and isinstance(value, dict):
            rows.append(ValueRow(depth, node.ja, node.en, heading=True))
            _describe(node.children, value, depth + 1, rows)
        elif node.kind == "repeat" and isinstance(value, list) and node.item is not None:
            rows.append(ValueRow(depth, node.ja, node.en, heading=True))
            for n, item in enumerate(value, start=1):
                rows.append(ValueRow(depth + 1, f"{node.item.ja} {n}", f"{node.item.en} {n}", heading=True))
                holder = item if isinstance(item, dict) else {}
                if node.item.children and not isinstance(item, dict):
                    holder = {_key(node.item.children[0]): item}
                _describe(node.item.children, holder, depth + 2, rows)
        elif node.kind == "attachments" and isinstance(value, list):
            rows.append(ValueRow(depth, node.ja, node.en, attachment_ids=[str(v) for v in value]))
        elif node.kind == "entry_ref" and isinstance(value, str):
            rows.append(ValueRow(depth, node.ja, node.en, entry_id=value))
        else:
            ja, en = _shown(node, value)
            rows.append(ValueRow(depth, node.ja, node.en, ja, en))


def _shown(node: FormNode, value: Any) -> tuple[str, str]:
    labels = {c.value: c for c in node.choices}
    if isinstance(value, bool):
        return ("はい", "Yes") if value else ("いいえ", "No")
    if isinstance(value, list):
        parts = [_shown(node, v) for v in value]
        return "、".join(p[0] for p in parts), ", ".join(p[1] for p in parts)
    if isinstance(value, str) and value in labels:
        return labels[value].ja, labels[value].en
    return str(value), str(value)
