"""Professions are what the access rules trust: nobody sets their own, and an organisation admin assigns a
licensed profession (physician, dentist, nurse, pharmacist) only where such a professional works."""

from __future__ import annotations

import pytest

from renkei.directory.models import User
from tests.factories import auth_headers, make_org, make_user

NEW_PASSWORD = "ひまわり畑を歩く午後の風2026"


def _staff(**overrides: object) -> dict:
    return {"email": "new.staff@midori.example", "name": "新人 職員", "profession": "care_worker",
            "role": "member", "password": NEW_PASSWORD} | overrides


def test_an_org_admin_cannot_change_their_own_profession(client, db, settings, keyring):
    office = make_org(db, "ある介護事業所", "care_service_provider")
    admin = make_user(db, office, profession="care_worker", role="org_admin", keyring=keyring)
    r = client.patch(f"/api/v1/staff/{admin.id}", json={"profession": "physician"},
                     headers=auth_headers(db, settings, keyring, admin))
    assert r.status_code == 403
    db.expire_all()
    assert db.get(User, admin.id).profession == "care_worker"


def test_not_even_a_region_admin_changes_their_own_profession(client, db, settings, keyring):
    region = make_user(db, make_org(db, "みどり市役所", "municipality"), profession="coordinator",
                       role="region_admin", keyring=keyring)
    r = client.patch(f"/api/v1/staff/{region.id}", json={"profession": "physician"},
                     headers=auth_headers(db, settings, keyring, region))
    assert r.status_code == 403


@pytest.mark.parametrize(("kind", "profession"), [
    ("care_service_provider", "physician"), ("care_management_office", "nurse"), ("municipality", "nurse"),
    ("pharmacy", "physician"), ("visiting_nurse_station", "pharmacist"),
    ("community_support_centre", "dentist"),
])
def test_an_org_admin_cannot_give_staff_a_licensed_profession_their_organisation_does_not_employ(
    client, db, settings, keyring, kind, profession,
):
    org = make_org(db, "ある事業所", kind)
    admin = auth_headers(db, settings, keyring, make_user(db, org, profession="care_manager", role="org_admin",
                                                          keyring=keyring))
    staff = make_user(db, org, profession="care_worker")
    patched = client.patch(f"/api/v1/staff/{staff.id}", json={"profession": profession}, headers=admin)
    assert patched.status_code == 403
    created = client.post(f"/api/v1/organisations/{org.id}/staff", json=_staff(profession=profession),
                          headers=admin)
    assert created.status_code == 403
    db.expire_all()
    assert db.get(User, staff.id).profession == "care_worker"


@pytest.mark.parametrize(("kind", "profession"), [
    ("home_care_clinic", "physician"), ("hospital", "nurse"), ("visiting_nurse_station", "nurse"),
    ("pharmacy", "pharmacist"), ("dental_clinic", "dentist"), ("care_management_office", "care_manager"),
    ("care_service_provider", "therapist"),
])
def test_an_org_admin_assigns_professions_that_fit_their_organisation(client, db, settings, keyring, kind,
                                                                       profession):
    org = make_org(db, "ある事業所", kind)
    admin = auth_headers(db, settings, keyring, make_user(db, org, profession="care_manager", role="org_admin",
                                                          keyring=keyring))
    staff = make_user(db, org, profession="care_worker")
    r = client.patch(f"/api/v1/staff/{staff.id}", json={"profession": profession}, headers=admin)
    assert r.status_code == 200 and r.json()["profession"] == profession


def test_a_region_admin_assigns_a_licensed_profession_anywhere(client, db, settings, keyring):
    office = make_org(db, "ある介護事業所", "care_service_provider")
    staff = make_user(db, office, profession="care_worker")
    region = make_user(db, make_org(db, "みどり市役所", "municipality"), profession="coordinator",
                       role="region_admin", keyring=keyring)
    r = client.patch(f"/api/v1/staff/{staff.id}", json={"profession": "physician"},
                     headers=auth_headers(db, settings, keyring, region))
    assert r.status_code == 200 and r.json()["profession"] == "physician"
