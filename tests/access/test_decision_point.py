"""The decision point itself: consent coverage, categories, the profession × sheet matrix, list narrowing."""

from __future__ import annotations

import uuid

from sqlalchemy import literal, select

from renkei.access import service as access
from renkei.access.service import Action
from renkei.config import Settings
from renkei.consent.models import CATEGORIES
from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from renkei.patients.models import Patient
from renkei.patients.schemas import MembershipIn
from renkei.sheets.registry import SheetRegistry
from tests.access.support import join_team
from tests.factories import actor_of, auth_headers, grant_consent, make_org, make_patient, make_user, patient_data

# SHEETS.md "Who may write what", transcribed independently of the code under test.
WRITE_TABLE = """
| sheet | physician | nurse | pharmacist | care_manager | msw | therapist | care_worker | dentist | dietitian |
| admission-info | – | – | – | write | – | – | – | – | – |
| discharge-info | write | write | – | write | write | – | – | – | – |
| emergency-info | write | write | – | write | – | – | – | write | – |
| acp | write | write | – | write | write | – | – | – | – |
| physician-visit | write | – | – | – | – | – | – | write | – |
| care-note | write | write | write | write | – | write | write | write | write |
| message | write | write | write | write | write | write | write | write | write |
"""

def _table() -> dict[tuple[str, str], bool]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in WRITE_TABLE.strip().splitlines()]
    header, body = rows[0][1:], rows[1:]
    return {(row[0], profession): cell == "write" for row in body for profession, cell in zip(header, row[1:])}

def _registry() -> SheetRegistry:
    return SheetRegistry.load(Settings().schemas_dir)


def test_consent_categories_are_exactly_the_sheet_categories_and_those_of_their_parts():
    registry = _registry()
    parts = {part.category for sheet in registry.all() for part in registry.subtrees(sheet.id, sheet.version)}
    assert {sheet.category for sheet in registry.all()} | parts == CATEGORIES


def test_write_clinical_follows_the_profession_by_sheet_matrix(db, keyring, world):
    registry = _registry()
    office = make_org(db, "多職種事業所", "care_service_provider")
    expected = _table()
    mismatches = []
    # Municipal coordinators never join a care team (tests/patients/test_care_team_rules.py).
    for profession in ["physician", "nurse", "pharmacist", "care_manager", "msw", "therapist", "care_worker",
                       "dentist", "dietitian"]:
        user = make_user(db, office, profession=profession)
        join_team(db, world, user, "other")
        for sheet in registry.all():
            decision = access.can(db, actor_of(user), Action.write_clinical, world.patient_id,
                                  category=sheet.category, sheet_id=sheet.id)
            want = expected.get((sheet.id, profession), False)
            if decision.allowed != want:
                mismatches.append((sheet.id, profession, decision.reason))
            if not want:
                assert decision.reason == "profession_not_allowed"
    assert mismatches == []


def test_every_team_member_covered_by_consent_may_read_every_sheet_category(db, world):
    for category in sorted(CATEGORIES):
        assert access.can(db, actor_of(world.nurse), Action.read_clinical, world.patient_id, category=category)


def test_an_excluded_category_is_hidden_from_a_member_who_sees_the_rest(db, keyring, world):
    grant_consent(db, keyring, world.patient_id, world.physician, excluded_categories=["acp"])
    nurse = actor_of(world.nurse)
    hidden = access.can(db, nurse, Action.read_clinical, world.patient_id, category="acp")
    assert not hidden and hidden.reason == "category_excluded"
    assert access.can(db, nurse, Action.read_clinical, world.patient_id, category="care")
    whole = access.can(db, nurse, Action.read_clinical, world.patient_id)
    assert whole.allowed and "acp" not in whole.categories and "care" in whole.categories
    entries = select(literal("acp").label("category")).union_all(select(literal("care"))).subquery()
    visible = db.scalars(select(entries.c.category).where(access.category_clause(whole, entries.c.category)))
    assert sorted(visible) == ["care"]
    summary = access.can(db, nurse, Action.read_emergency, world.patient_id)
    assert summary.allowed and summary.categories == frozenset({"emergency"})
    write = access.can(db, nurse, Action.write_clinical, world.patient_id, category="acp", sheet_id="acp")
    assert not write and write.reason == "category_excluded"


def test_decision_names_the_consent_and_membership_it_relied_on(db, world):
    decision = access.can(db, actor_of(world.nurse), Action.read_clinical, world.patient_id, category="care")
    assert decision.reason == "team_consent" and decision.consent_id == world.consent_id
    assert decision.membership_id is not None and decision.grant_id is None


def test_individual_consent_shares_only_with_the_listed_organisations(client, db, settings, keyring, world):
    grant_consent(db, keyring, world.patient_id, world.physician, scope="individual",
                  organisation_ids=[world.clinic.id])
    nurse = auth_headers(db, settings, keyring, world.nurse)
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=nurse).status_code == 404
    assert client.get("/api/v1/patients", headers=nurse).json() == []
    denied = access.can(db, actor_of(world.nurse), Action.read_registration, world.patient_id)
    assert denied.reason == "organisation_not_included"
    doctor = auth_headers(db, settings, keyring, world.physician)
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=doctor).status_code == 200


def test_registrar_reaches_registration_and_consent_before_consent_but_not_clinical_data(client, db, settings,
                                                                                          keyring, world):
    registrar = auth_headers(db, settings, keyring, world.outsider)
    r = client.post("/api/v1/patients", json=patient_data(name="新規 太郎", team_role="care_manager"),
                    headers=registrar)
    pid = uuid.UUID(r.json()["id"])
    assert client.get(f"/api/v1/patients/{pid}", headers=registrar).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}/consents", headers=registrar).json() == []
    assert client.get(f"/patients/{pid}/consents", headers=registrar).status_code == 200
    assert [p["id"] for p in client.get("/api/v1/patients", headers=registrar).json()] == [str(pid)]
    decision = access.can(db, actor_of(world.outsider), Action.read_clinical, pid, category="care")
    assert not decision and decision.reason == "no_consent"
    # A colleague the registrar added sees nothing until the patient consents.
    join = client.post(f"/api/v1/patients/{pid}/team", headers=registrar,
                       json={"user_id": str(world.nurse.id), "team_role": "visiting_nurse"})
    assert join.status_code == 201
    nurse = auth_headers(db, settings, keyring, world.nurse)
    assert client.get(f"/api/v1/patients/{pid}", headers=nurse).status_code == 404
    assert str(pid) not in {p["id"] for p in client.get("/api/v1/patients", headers=nurse).json()}


def test_patient_list_narrowing_agrees_with_the_decision_point(db, keyring, world):
    """The SQL clause used for lists and `can(read_registration)` must say the same for every state."""
    others = [make_patient(db, keyring, world.physician, name=f"患者 {n}", name_kana=f"カンジャ {n}")
              for n in range(4)]
    for pid in others:
        patient_service.add_member(db, actor=actor_of(world.physician), patient_id=pid,
                                   data=MembershipIn(user_id=world.nurse.id, team_role="visiting_nurse"))
    grant_consent(db, keyring, others[0], world.physician)
    grant_consent(db, keyring, others[1], world.physician, organisation_ids=[world.nursing.id])
    grant_consent(db, keyring, others[2], world.physician, scope="individual", organisation_ids=[world.nursing.id])
    grant_consent(db, keyring, others[3], world.physician, valid_until=today_jst())
    for user in (world.physician, world.nurse, world.outsider):
        actor = actor_of(user)
        listed = set(db.scalars(select(Patient.id).where(access.patients_clause(actor, Patient.id))))
        for pid in [world.patient_id, *others]:
            assert (pid in listed) == access.can(db, actor, Action.read_registration, pid).allowed, (user.name, pid)


def test_clinical_list_clause_drops_categories_the_consent_excludes(db, keyring, world):
    grant_consent(db, keyring, world.patient_id, world.physician, excluded_categories=["message", "visit"])
    nurse = actor_of(world.nurse)
    seen = {
        category for category in sorted(CATEGORIES)
        if db.scalar(select(Patient.id).where(Patient.id == world.patient_id,
                                               access.clinical_clause(nurse, Patient.id, literal(category))))
    }
    assert seen == CATEGORIES - {"message", "visit"}
    assert db.scalar(select(Patient.id).where(access.clinical_clause(actor_of(world.outsider), Patient.id,
                                                                     literal("care")))) is None
