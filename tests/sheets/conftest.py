"""Fixtures for the sheet registry tests: the real schemas/ directory, loaded once."""

import json

import pytest

from renkei.sheets.registry import SheetRegistry
from tests.sheets.support import SCHEMAS_DIR


@pytest.fixture(scope="session")
def registry() -> SheetRegistry:
    return SheetRegistry.load(SCHEMAS_DIR)


@pytest.fixture(scope="session")
def common() -> dict:
    return json.loads((SCHEMAS_DIR / "_common" / "1.json").read_text(encoding="utf-8"))
