"""Organisation directory: region admins register organisations; every professional can read entries."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from renkei.directory.models import Organisation
from tests.factories import auth_headers, make_user

NEW_ORG = {"name": "みどり薬局", "kind": "pharmacy", "phone": "0120-111-222"}


def test_region_admin_registers_an_organisation(client, db, settings, keyring, world):
    region = make_user(db, world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    headers = auth_headers(db, settings, keyring, region)
    r = client.post("/api/v1/organisations", json=NEW_ORG, headers=headers)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in ("name", "kind", "phone", "active")} == {**NEW_ORG, "active": True}
    assert db.get(Organisation, uuid.UUID(r.json()["id"])).name == "みどり薬局"


def test_org_admins_and_members_cannot_register_organisations(client, db, settings, keyring, world):
    for user in (world.clinic_admin, world.physician):
        headers = auth_headers(db, settings, keyring, user)
        r = client.post("/api/v1/organisations", json=NEW_ORG, headers=headers)
        assert r.status_code == 403, user.role
    assert db.scalars(select(Organisation).where(Organisation.name == "みどり薬局")).first() is None


def test_organisation_registration_rejects_unknown_kinds_and_fields(client, db, settings, keyring, world):
    region = make_user(db, world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    headers = auth_headers(db, settings, keyring, region)
    r = client.post("/api/v1/organisations", json={**NEW_ORG, "kind": "casino"}, headers=headers)
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/kind"]
    r = client.post("/api/v1/organisations", json={**NEW_ORG, "active": False}, headers=headers)
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/active"]


def test_any_professional_reads_one_directory_entry(client, db, settings, keyring, world):
    r = client.get(f"/api/v1/organisations/{world.nursing.id}", headers=auth_headers(db, settings, keyring,
                                                                                      world.outsider))
    assert r.status_code == 200
    assert r.json() == {"id": str(world.nursing.id), "name": "テスト訪問看護ステーション",
                        "kind": "visiting_nurse_station", "phone": None, "active": True}


def test_unknown_organisation_is_404_and_the_directory_needs_sign_in(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.physician)
    r = client.get("/api/v1/organisations/00000000-0000-4000-8000-000000000000", headers=headers)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get(f"/api/v1/organisations/{world.clinic.id}").status_code == 401
    assert client.get("/api/v1/organisations").status_code == 401


def test_directory_lists_active_organisations_but_an_inactive_one_can_still_be_read(
    client, db, settings, keyring, world
):
    world.other_office.active = False
    db.flush()
    headers = auth_headers(db, settings, keyring, world.physician)
    listed = {o["id"] for o in client.get("/api/v1/organisations", headers=headers).json()}
    assert str(world.clinic.id) in listed and str(world.other_office.id) not in listed
    r = client.get(f"/api/v1/organisations/{world.other_office.id}", headers=headers)
    assert r.status_code == 200 and r.json()["active"] is False
