"""Locations shared by the sheet registry tests."""

from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*/*.json"))
