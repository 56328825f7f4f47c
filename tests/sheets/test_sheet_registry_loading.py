"""Loading schemas/: a broken file stops start-up with a message that names it."""

import json
import shutil
from pathlib import Path

import pytest

from renkei.sheets.registry import SheetRegistry, SheetSchemaError
from tests.sheets.support import SCHEMAS_DIR


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A private copy of the real schemas/ to break."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target)
    return target


def edit(file: Path, change) -> None:
    schema = json.loads(file.read_text(encoding="utf-8"))
    change(schema)
    file.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")


def load_error(directory: Path) -> str:
    with pytest.raises(SheetSchemaError) as caught:
        SheetRegistry.load(directory)
    return str(caught.value)


def test_copy_of_the_real_schemas_loads(schemas):
    assert [s.id for s in SheetRegistry.load(schemas).all()] == [
        "acp", "admission-info", "care-note", "discharge-info", "emergency-info", "message", "physician-visit"
    ]


def test_invalid_json_names_the_file(schemas):
    (schemas / "acp" / "1.json").write_text('{"title": "人生会議",', encoding="utf-8")
    message = load_error(schemas)
    assert "acp/1.json" in message and "invalid JSON" in message


def test_schema_that_breaks_the_2020_12_metaschema_names_the_file_and_place(schemas):
    edit(schemas / "message" / "1.json", lambda s: s["properties"]["text"].update(type="strang"))
    message = load_error(schemas)
    assert "message/1.json" in message and "/properties/text/type" in message


def test_reference_to_a_missing_shared_definition_names_the_file_and_the_ref(schemas):
    edit(
        schemas / "care-note" / "1.json",
        lambda s: s["properties"]["vitals"].update({"$ref": "../_common/1.json#/$defs/vital_signs"}),
    )
    message = load_error(schemas)
    assert "care-note/1.json" in message and "vital_signs" in message


def test_reference_to_a_remote_schema_is_not_fetched_and_fails(schemas):
    edit(
        schemas / "message" / "1.json",
        lambda s: s["properties"]["text"].update({"$ref": "https://example.com/text.json"}),
    )
    assert "message/1.json" in load_error(schemas)


def test_broken_reference_inside_the_shared_definitions_is_caught(schemas):
    edit(schemas / "_common" / "1.json", lambda s: s["$defs"]["contact"]["properties"]["phone"].update(
        {"$ref": "#/$defs/telephone"}))
    assert "_common/1.json" in load_error(schemas)


def test_version_in_the_file_must_match_the_file_name(schemas):
    edit(schemas / "acp" / "1.json", lambda s: s.update({"x-version": 2}))
    message = load_error(schemas)
    assert "acp/1.json" in message and "x-version" in message


def test_sheet_id_must_match_its_folder(schemas):
    edit(schemas / "acp" / "1.json", lambda s: s.update({"x-sheet-id": "advance-care-plan"}))
    message = load_error(schemas)
    assert "acp/1.json" in message and "x-sheet-id" in message


@pytest.mark.parametrize("key", ["x-sheet-id", "x-version", "x-category", "x-title-en"])
def test_missing_sheet_annotation_is_named(schemas, key):
    edit(schemas / "physician-visit" / "1.json", lambda s: s.pop(key))
    message = load_error(schemas)
    assert "physician-visit/1.json" in message and key in message


def test_file_name_must_be_a_version_number(schemas):
    shutil.copy(schemas / "message" / "1.json", schemas / "message" / "v2.json")
    assert "message/v2.json" in load_error(schemas)


def test_id_must_mirror_the_file_layout_so_relative_refs_resolve(schemas):
    moved = "https://renkei.example/schemas/msg/1.json"
    edit(schemas / "message" / "1.json", lambda s: s.update({"$id": moved}))
    message = load_error(schemas)
    assert "message/1.json" in message and "$id" in message


def test_other_dialects_are_refused(schemas):
    draft_07 = "http://json-schema.org/draft-07/schema#"
    edit(schemas / "message" / "1.json", lambda s: s.update({"$schema": draft_07}))
    assert "message/1.json" in load_error(schemas)


def test_missing_directory_is_reported(tmp_path):
    assert "nowhere" in load_error(tmp_path / "nowhere")


def test_a_new_version_becomes_the_latest_while_the_old_one_stays_valid(schemas):
    def bump(schema):
        schema["$id"] = schema["$id"].replace("/1.json", "/2.json")
        schema["x-version"] = 2
        schema["properties"]["text"]["maxLength"] = 8000

    shutil.copy(schemas / "message" / "1.json", schemas / "message" / "2.json")
    edit(schemas / "message" / "2.json", bump)
    registry = SheetRegistry.load(schemas)
    assert registry.latest("message").version == 2
    versions = [(s.id, s.version) for s in registry.all() if s.id == "message"]
    assert versions == [("message", 1), ("message", 2)]
    long_text = {"text": "あ" * 5000}
    assert registry.validate("message", 2, long_text) == []
    assert [e.path for e in registry.validate("message", 1, long_text)] == ["/text"]
