"""House rules every schema file under schemas/ must follow."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from renkei.consent.models import CATEGORIES
from tests.sheets.support import SCHEMA_FILES, SCHEMAS_DIR

SHEET_CATEGORIES = {
    "admission-info": "admission",
    "discharge-info": "discharge",
    "emergency-info": "emergency",
    "acp": "acp",
    "physician-visit": "visit",
    "care-note": "care",
    "message": "message",
}


def load(file: Path) -> dict:
    return json.loads(file.read_text(encoding="utf-8"))


def subschemas(schema: dict, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every schema object nested in schema (itself included), with its location."""
    if not isinstance(schema, dict):
        return
    yield where or "/", schema
    for keyword in ("properties", "$defs", "patternProperties"):
        for name, sub in schema.get(keyword, {}).items():
            yield from subschemas(sub, f"{where}/{keyword}/{name}")
    for keyword in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
        if isinstance(schema.get(keyword), dict):
            yield from subschemas(schema[keyword], f"{where}/{keyword}")
    for keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(keyword, [])):
            yield from subschemas(sub, f"{where}/{keyword}/{index}")


def all_subschemas() -> Iterator[tuple[str, dict]]:
    for file in SCHEMA_FILES:
        for where, schema in subschemas(load(file)):
            yield f"{file.parent.name}/{file.name}#{where}", schema


def test_schema_directory_holds_every_standard_sheet_and_the_shared_definitions():
    assert {f"{f.parent.name}/{f.name}" for f in SCHEMA_FILES} == {
        "_common/1.json", *(f"{sheet}/1.json" for sheet in SHEET_CATEGORIES)
    }


@pytest.mark.parametrize("file", SCHEMA_FILES, ids=lambda f: f.parent.name)
def test_schema_file_is_a_valid_draft_2020_12_schema(file):
    schema = load(file)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://renkei.example/schemas/{file.parent.name}/{file.stem}.json"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("sheet_id", sorted(SHEET_CATEGORIES))
def test_sheet_declares_its_id_version_titles_and_consent_category(sheet_id):
    schema = load(SCHEMAS_DIR / sheet_id / "1.json")
    assert schema["x-sheet-id"] == sheet_id
    assert schema["x-version"] == 1
    assert schema["x-category"] == SHEET_CATEGORIES[sheet_id]
    assert schema["title"] and schema["x-title-en"]
    assert not schema["title"].isascii(), "the title must be the Japanese one"


def declaring_subschemas() -> Iterator[tuple[str, dict]]:
    """The subschemas that declare data, not the conditions (if/then/else) that constrain it."""
    for where, schema in all_subschemas():
        if not any(part in ("if", "then", "else") for part in where.split("#", 1)[1].split("/")):
            yield where, schema


def test_every_property_has_a_japanese_and_an_english_title():
    missing = [
        f"{where}/properties/{name}"
        for where, schema in declaring_subschemas()
        for name, prop in schema.get("properties", {}).items()
        if not (isinstance(prop.get("title"), str) and prop["title"] and prop.get("x-title-en"))
    ]
    assert missing == []


def test_every_object_rejects_unknown_properties():
    loose = [
        where
        for where, schema in declaring_subschemas()
        if (schema.get("type") == "object" or "properties" in schema)
        and schema.get("additionalProperties") is not False
    ]
    assert loose == []


def test_conditions_constrain_only_properties_their_object_declares():
    # A typo in an if/then property name would make the rule silently never apply.
    stray = [
        f"{where}/allOf/{i}/{part}/{name}"
        for where, schema in declaring_subschemas()
        for i, rule in enumerate(schema.get("allOf", []))
        for part in ("if", "then", "else")
        for name in [*rule.get(part, {}).get("properties", {}), *rule.get(part, {}).get("required", [])]
        if name not in schema.get("properties", {})
    ]
    assert stray == []


def test_every_free_text_string_has_a_maximum_length():
    # Enum strings are already bounded by their codes; a maxLength there would only double the error.
    unbounded = [
        where
        for where, schema in all_subschemas()
        if schema.get("type") == "string"
        and "enum" not in schema
        and not isinstance(schema.get("maxLength"), int)
    ]
    assert unbounded == []


def test_every_array_has_a_maximum_number_of_items():
    unbounded = [
        where
        for where, schema in all_subschemas()
        if schema.get("type") == "array" and not isinstance(schema.get("maxItems"), int)
    ]
    assert unbounded == []


def test_every_number_has_a_range():
    unbounded = [
        where
        for where, schema in all_subschemas()
        if schema.get("type") in ("integer", "number") and not ("minimum" in schema and "maximum" in schema)
    ]
    assert unbounded == []


def test_every_enum_value_is_an_ascii_code_with_japanese_and_english_labels():
    problems = []
    for where, schema in all_subschemas():
        if "enum" not in schema:
            continue
        codes = schema["enum"]
        if not all(isinstance(code, str) and code.isascii() and code for code in codes):
            problems.append(f"{where}: non-ASCII code")
        for key in ("x-enum-labels", "x-enum-labels-en"):
            labels = schema.get(key, {})
            if set(labels) != set(codes) or not all(labels.values()):
                problems.append(f"{where}: {key} does not label exactly {codes}")
    assert problems == []


def test_multiple_choice_fields_reject_duplicates():
    lists_of_codes = [
        (where, schema)
        for where, schema in all_subschemas()
        if schema.get("type") == "array" and "enum" in schema.get("items", {})
    ]
    assert lists_of_codes, "expected multi-choice fields"
    assert [where for where, schema in lists_of_codes if schema.get("uniqueItems") is not True] == []


def test_shared_enums_are_referenced_from_common_rather_than_copied(common):
    shared_code_lists = {
        name: definition["enum"] for name, definition in common["$defs"].items() if "enum" in definition
    }
    copies = [
        (where, name)
        for where, schema in all_subschemas()
        if not where.startswith("_common/")
        for name, codes in shared_code_lists.items()
        if schema.get("enum") == codes
    ]
    assert copies == []


def test_dates_and_date_times_declare_their_format():
    date_like = [
        where
        for where, schema in all_subschemas()
        if schema.get("type") == "string"
        and where.endswith(("_date", "/date", "/since", "/valid_from", "/valid_until"))
        and schema.get("format") != "date"
    ]
    assert date_like == []
    time_like = [
        where
        for where, schema in all_subschemas()
        if schema.get("type") == "string" and where.endswith("_at") and schema.get("format") != "date-time"
    ]
    assert time_like == []


def test_patient_identity_is_not_re_typed_on_any_sheet():
    identity = {"kana", "name_kana", "birth_date", "date_of_birth", "sex", "gender", "patient_name"}
    found = [
        f"{where}/properties/{name}"
        for where, schema in all_subschemas()
        for name in schema.get("properties", {})
        if name in identity
    ]
    assert found == []
    for file in SCHEMA_FILES:
        top = load(file).get("properties", {})
        assert "name" not in top and "age" not in top, file


def test_attachment_fields_reference_the_shared_attachment_list(common):
    attachment_ids = common["$defs"]["attachment_ids"]
    assert attachment_ids["items"]["format"] == "uuid"
    wrong = [
        f"{where}/properties/{name}"
        for where, schema in all_subschemas()
        if not where.startswith("_common/")
        for name, prop in schema.get("properties", {}).items()
        if name.endswith("attachment_ids") and prop.get("$ref") != "../_common/1.json#/$defs/attachment_ids"
    ]
    assert wrong == []


def test_free_text_lengths_follow_the_sheet_legend():
    # text 200, longtext 4000, tel 30; dates, date-times and uuids are bounded by their format.
    allowed = {200, 4000, 30, 10, 40, 36}
    odd = [
        (where, schema["maxLength"])
        for where, schema in all_subschemas()
        if "maxLength" in schema and schema["maxLength"] not in allowed
    ]
    assert odd == []


def test_every_x_category_is_a_consent_category():
    tagged = [(where, schema["x-category"]) for where, schema in all_subschemas() if "x-category" in schema]
    assert len(tagged) >= 13, "every sheet and the parts with their own category"
    assert [(where, value) for where, value in tagged if value not in CATEGORIES] == []


def test_parts_with_their_own_category_are_found_per_sheet_version(registry):
    def tagged(sheet_id):
        return [(s.pattern, s.category) for s in registry.subtrees(sheet_id, 1)]

    assert tagged("emergency-info") == [("/resuscitation", "acp")]
    assert tagged("physician-visit") == [("/end_of_life", "acp")]
    assert {s.pattern for s in registry.subtrees("admission-info", 1)} == {
        "/function/behaviour", "/function/behaviour_other_text"}
    assert {s.pattern for s in registry.subtrees("discharge-info", 1)} == {
        "/condition/cognition", "/condition/cognition_other_text"}
    assert {s.category for sheet in registry.all() for s in registry.subtrees(sheet.id, sheet.version)} == {
        "acp", "psychiatric"}
    assert registry.subtrees("message", 1) == ()


def test_every_hint_has_an_english_version_and_entry_references_name_a_sheet():
    hints = [(where, schema) for where, schema in all_subschemas() if "description" in schema]
    assert hints, "expected field hints"
    assert [where for where, schema in hints if not schema.get("x-description-en")] == []
    references = [(where, schema["x-entry-sheet"]) for where, schema in all_subschemas()
                  if "x-entry-sheet" in schema]
    assert [where for where, sheet in references if sheet not in SHEET_CATEGORIES] == []
    assert len(references) == 2
