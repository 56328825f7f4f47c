"""The form tree built from a sheet's JSON Schema, and the labelled view of an entry's data."""

from __future__ import annotations

from typing import Any

from renkei.web.schema_form import build_form, describe

COMMON = {
    "$id": "https://renkei.example/schemas/_common/1.json",
    "$defs": {
        "level": {"title": "共通の題", "type": "string", "enum": ["a", "b"],
                  "x-enum-labels": {"a": "あ", "b": "い"}, "x-enum-labels-en": {"a": "A", "b": "B"}},
    },
}
SHEET = {
    "$id": "https://renkei.example/schemas/demo/1.json",
    "type": "object",
    "required": ["head"],
    "properties": {
        "head": {"title": "基本", "type": "object", "x-section": "1", "required": ["day"],
                 "properties": {"day": {"title": "日付", "type": "string", "format": "date"},
                                "level": {"title": "段階", "$ref": "../_common/1.json#/$defs/level"}}},
        "visits": {"title": "訪問", "type": "array", "maxItems": 3,
                   "items": {"title": "訪問", "type": "object", "properties": {
                       "notes": {"title": "所見", "type": "array",
                                 "items": {"title": "所見", "type": "object",
                                           "properties": {"text": {"title": "本文", "type": "string",
                                                                   "maxLength": 4000}}}}}}},
        "photo_attachment_ids": {"title": "写真", "type": "array",
                   "items": {"type": "string", "format": "uuid"}},
    },
}


def fetch(uri: str) -> dict[str, Any]:
    return {SHEET["$id"]: SHEET, COMMON["$id"]: COMMON}[uri]


def test_refs_are_followed_and_the_referring_title_wins():
    head = build_form(SHEET, fetch)[0]
    assert (head.kind, head.required, head.section) == ("group", True, "1")
    day, level = head.children
    assert (day.kind, day.pointer, day.required) == ("date", "/head/day", True)
    assert (level.kind, level.ja) == ("radio", "段階")
    assert [(c.value, c.ja, c.en) for c in level.choices] == [("a", "あ", "A"), ("b", "い", "B")]


def test_nested_repeatable_groups_use_one_placeholder_per_depth_and_photo_ids_get_a_camera():
    visits = build_form(SHEET, fetch)[1]
    assert (visits.kind, visits.max_items, visits.placeholder) == ("repeat", 3, "__i0__")
    notes = visits.item.children[0]
    assert notes.kind == "repeat" and notes.placeholder == "__i1__"
    assert notes.item.children[0].pointer == "/visits/__i0__/notes/__i1__/text"
    assert notes.item.children[0].kind == "textarea"
    photos = build_form(SHEET, fetch)[2]
    assert (photos.kind, photos.pointer) == ("attachments", "/photo_attachment_ids")


def test_an_entry_is_described_with_labels_and_enum_labels_in_schema_order():
    rows = describe(build_form(SHEET, fetch), {"head": {"level": "b", "day": "2026-11-01"},
                                              "visits": [{"notes": [{"text": "良好"}]}]})
    shown = [(r.depth, r.ja, r.value_ja, r.value_en) for r in rows]
    assert shown == [(0, "基本", "", ""), (1, "日付", "2026-11-01", "2026-11-01"), (1, "段階", "い", "B"),
                     (0, "訪問", "", ""), (1, "訪問 1", "", ""), (2, "所見", "", ""), (3, "所見 1", "", ""),
                     (4, "本文", "良好", "良好")]
