"""Printing fixtures: a team with consent, every sheet posted once, and each printout rendered once per module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from renkei.app import create_app
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.session import make_sessionmaker
from renkei.directory.models import User
from renkei.sheets.registry import SheetRegistry
from tests.factories import World, auth_headers, build_world, make_org
from tests.timeline.support import example, join_team, posted

SHEETS_DIR = Path(__file__).resolve().parents[2] / "schemas"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "print"


@dataclass
class Printed:
    """Everything the module printed, with who and what it was printed for."""

    world: World
    care_manager: User
    entries: dict[str, dict] = field(default_factory=dict)  # sheet id -> posted entry JSON
    pdfs: dict[str, bytes] = field(default_factory=dict)  # sheet id -> PDF of the entry
    blank: dict[str, bytes] = field(default_factory=dict)  # sheet id -> blank PDF with the patient header
    fully_blank: dict[str, bytes] = field(default_factory=dict)  # sheet id -> PDF without any patient


@pytest.fixture(scope="session")
def registry() -> SheetRegistry:
    return SheetRegistry.load(SHEETS_DIR)


@pytest.fixture(scope="module")
def printed(engine: Engine, settings: Settings, registry: SheetRegistry) -> Iterator[Printed]:
    """Post every sheet's example and print it, blank and fully blank: once per module, as WeasyPrint is slow."""
    connection = engine.connect()
    outer = connection.begin()
    db = make_sessionmaker(connection, join_transaction_mode="create_savepoint")()
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    try:
        world = build_world(db, keyring)
        office = make_org(db, "みどり居宅介護支援事業所", "care_management_office")
        care_manager = join_team(db, world.patient_id, world.physician, office, profession="care_manager",
                                 team_role="care_manager", name="高橋 健一")
        result = Printed(world, care_manager)
        doctor = auth_headers(db, settings, keyring, world.physician)
        manager = auth_headers(db, settings, keyring, care_manager)
        db.commit()
        with TestClient(create_app(settings, bind=connection), base_url="http://testserver") as client:
            for sheet in registry.all():
                headers = manager if sheet.id == "admission-info" else doctor
                entry = posted(client, headers, world.patient_id, sheet.id, example(sheet.id))
                result.entries[sheet.id] = entry
                result.pdfs[sheet.id] = fetch(client, doctor, f"/print/entries/{entry['id']}.pdf")
                result.blank[sheet.id] = fetch(client, doctor,
                                               f"/print/blank/{sheet.id}.pdf?patient_id={world.patient_id}")
                result.fully_blank[sheet.id] = fetch(client, doctor, f"/print/blank/{sheet.id}.pdf")
        yield result
    finally:
        db.close()
        outer.rollback()
        connection.close()


def fetch(client: TestClient, headers: dict[str, str], url: str) -> bytes:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/pdf"
    return r.content
