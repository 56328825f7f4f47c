"""The sheets API: the registry loaded at start-up, served as JSON Schemas; a broken schema stops start-up."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from renkei.app import create_app
from renkei.sheets.registry import SheetSchemaError
from tests.factories import auth_headers
from tests.sheets.support import SCHEMAS_DIR

SHEET_IDS = ["acp", "admission-info", "care-note", "discharge-info", "emergency-info", "message",
             "physician-visit"]


def test_sheet_list_names_every_sheet_with_titles_and_category(client, db, settings, keyring, world):
    r = client.get("/api/v1/sheets", headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 200
    sheets = {s["id"]: s for s in r.json()}
    assert sorted(sheets) == SHEET_IDS
    assert sheets["discharge-info"] == {"id": "discharge-info", "version": 1, "title": "退院・退所情報記録書",
                                        "title_en": "Discharge information record", "category": "discharge",
                                        "latest": True}
    assert all(s["title"] and s["title_en"] for s in sheets.values())


def test_a_sheet_version_is_served_as_its_json_schema(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.nurse)
    r = client.get("/api/v1/sheets/acp/1", headers=headers)
    assert r.status_code == 200
    assert r.json() == json.loads((SCHEMAS_DIR / "acp" / "1.json").read_text(encoding="utf-8"))
    common = client.get("/api/v1/sheets/_common/1", headers=headers)
    assert common.status_code == 200 and "place_preference" in common.json()["$defs"]


@pytest.mark.parametrize("path", ["/api/v1/sheets/referral/1", "/api/v1/sheets/acp/2",
                                  "/api/v1/sheets/_nope/1"])
def test_unknown_sheet_or_version_is_404_unknown_sheet(client, db, settings, keyring, world, path):
    r = client.get(path, headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 404 and r.json()["error"] == "unknown_sheet"


def test_sheets_need_sign_in(client):
    assert client.get("/api/v1/sheets").status_code == 401
    assert client.get("/api/v1/sheets/acp/1").status_code == 401


def test_broken_schema_file_stops_start_up_naming_the_file(settings, tmp_path, caplog):
    broken = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, broken)
    (broken / "message" / "1.json").write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema",',
                                               encoding="utf-8")
    with caplog.at_level(logging.CRITICAL, logger="renkei"), pytest.raises(SheetSchemaError) as failure:
        create_app(settings.model_copy(update={"schemas_dir": broken}))
    assert "message/1.json" in str(failure.value) and "invalid JSON" in str(failure.value)
    assert any("message/1.json" in r.getMessage() for r in caplog.records)


def test_missing_schema_directory_stops_start_up(settings, tmp_path):
    with pytest.raises(SheetSchemaError, match="not found"):
        create_app(settings.model_copy(update={"schemas_dir": tmp_path / "nowhere"}))


def test_settings_default_to_the_repository_schemas(settings):
    assert settings.schemas_dir.resolve() == SCHEMAS_DIR.resolve()
