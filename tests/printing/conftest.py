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
from renkei.printing.forms import FormBuilder
from renkei.printing.render import pdf_text
from renkei.sheets.registry import SheetRegistry
from tests.factories import World, auth_headers, build_world, make_org
from tests.printing.instances import Generator, Instance, expectations
from tests.printing.support import intake, photo, printout
from tests.timeline.support import example, join_team, png_bytes, posted, upload

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
    # sheet id -> (instance filling every field, text of each page of its PDF)
    every_field: dict[str, list[tuple[Instance, list[str]]]] = field(default_factory=dict)


@pytest.fixture
def as_user(db, settings, keyring):
    """Bearer headers for a user of the test's world."""
    return lambda user: auth_headers(db, settings, keyring, user)


@pytest.fixture
def filed(client, world, as_user) -> dict:
    """A care note printed blank for the patient, filled by hand, photographed and filed by the nurse."""
    pdf = printout(client, as_user(world.physician), f"/print/blank/care-note.pdf?patient_id={world.patient_id}")
    r = intake(client, as_user(world.nurse), photo(pdf))
    assert r.status_code == 201, r.text
    return r.json()


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
            print_every_field(client, registry, result, {"admission-info": manager}, doctor)
    finally:
        # Rolled back before the module's tests run: they read only the bytes and JSON collected here, and
        # a transaction kept open for the whole module would hold the audit and outbox locks it took.
        db.close()
        outer.rollback()
        connection.close()
    yield result


def print_every_field(client: TestClient, registry: SheetRegistry, result: Printed,
                      authors: dict[str, dict[str, str]], default: dict[str, str]) -> None:
    """Post and print, for every sheet version, instances that fill every field of its schema."""
    builder = FormBuilder(registry)
    patient_id = result.world.patient_id
    referenced = posted(client, default, patient_id, "message", {"text": "参照される記録"})["id"]
    photos: dict[int, str] = {}
    for sheet in registry.all():
        headers = authors.get(sheet.id, default)
        if id(headers) not in photos:  # an attachment is referenced by the one who uploaded it
            r = upload(client, headers, patient_id, sheet.id, png_bytes())
            assert r.status_code == 201, r.text
            photos[id(headers)] = r.json()["id"]
        generator = Generator(builder, sheet, attachment_id=photos[id(headers)], entry_id=referenced,
                              entries_by_sheet={k: e["id"] for k, e in result.entries.items()})
        printed = []
        for data in generator.instances():
            if sheet.id == "acp":
                retire_current_acp(client, default, patient_id)
            entry = posted(client, headers, patient_id, sheet.id, data, version=sheet.version)
            pdf = fetch(client, default, f"/print/entries/{entry['id']}.pdf")
            printed.append((expectations(builder, sheet, entry["data"]), pdf_text(pdf)))
        result.every_field[f"{sheet.id}/{sheet.version}"] = printed


def retire_current_acp(client: TestClient, headers: dict[str, str], patient_id) -> None:
    """Mark the current ACP entered in error: the generated instances are dated years before the example,
    and an ACP dated before the current one is refused (an old discussion must not become current)."""
    card = client.get(f"/api/v1/patients/{patient_id}/summary", headers=headers).json()
    if card["acp"] is not None:
        r = client.post(f"/api/v1/entries/{card['acp']['entry_id']}/entered-in-error", headers=headers,
                        json={"reason": "印刷試験のため"})
        assert r.status_code == 200, r.text


def fetch(client: TestClient, headers: dict[str, str], url: str) -> bytes:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/pdf"
    return r.content
