"""The demo region's six weeks of entries: every sheet kind, valid payloads, current status cards, and the
consent stories (a withdrawn consent, an excluded office) still holding once the timeline is full."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from renkei import demo
from renkei.app import create_app
from renkei.config import Settings
from renkei.db.types import JST, today_jst
from renkei.directory.models import Organisation, User
from renkei.sheets import service as sheets
from renkei.timeline import views
from renkei.timeline.models import EntryRecipient, EntryStatus, TimelineEntry
from tests import factories
from tests.crypto import live

PASSWORD = "demo-region-test-passphrase"


@dataclass
class Region:
    settings: Settings
    patients: list[dict]  # the roster's patients, with their team's emails

    def patient(self, index: int) -> dict:
        """The demo patient created `index`-th (family names are given in order)."""
        family = demo.FAMILY[index][0]
        return next(p for p in self.patients if p["name"].startswith(family + " "))

    def member(self, patient: dict, team_role: str) -> str:
        return next(m["email"] for m in patient["team"] if m["team_role"] == team_role)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """A database of its own, migrated and loaded with the demo region once for this module."""
    var_dir = tmp_path_factory.mktemp("demo-region")
    with live.scratch_database(var_dir) as url:
        settings = live.migrate(live.settings_for(var_dir, url))
        with live.committing_session(settings) as session:
            roster = demo.load(session, keyring=live.open_keyring(settings), password=PASSWORD,
                               settings=settings)
        yield Region(settings, roster.patients)


@pytest.fixture(scope="module")
def client(region: Region) -> Iterator[TestClient]:
    with TestClient(create_app(region.settings), base_url="http://testserver") as c:
        yield c


def headers_for(region: Region, email: str) -> dict[str, str]:
    keyring = live.open_keyring(region.settings)
    with live.committing_session(region.settings) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return factories.auth_headers(session, region.settings, keyring, user)


def entries(region: Region) -> list[TimelineEntry]:
    with live.committing_session(region.settings) as session:
        rows = list(session.scalars(select(TimelineEntry)))
        session.expunge_all()
        return rows


def test_every_patient_has_entries_and_the_region_has_every_sheet_kind(region):
    rows = entries(region)
    registry = sheets.registry_for(region.settings.schemas_dir)
    assert {r.sheet_id for r in rows} == {s.id for s in registry.all()}
    per_patient = Counter(r.patient_id for r in rows)
    assert len(per_patient) == 20 and min(per_patient.values()) >= 8
    assert all(r.status == EntryStatus.final and r.posted_at is not None for r in rows)
    assert sum(r.priority == "urgent" for r in rows) >= 2


def test_every_entry_decrypts_to_a_payload_valid_for_its_sheet_and_its_authors_profession(region):
    registry = sheets.registry_for(region.settings.schemas_dir)
    keyring = live.open_keyring(region.settings)
    # The writing matrix of SHEETS.md (care notes and messages: every profession).
    may_write = {"admission-info": {"care_manager"},
                 "discharge-info": {"physician", "nurse", "care_manager", "msw"},
                 "emergency-info": {"physician", "nurse", "care_manager", "dentist"},
                 "acp": {"physician", "nurse", "care_manager", "msw"},
                 "physician-visit": {"physician", "dentist"}}
    with live.committing_session(region.settings) as session:
        rows = list(session.scalars(select(TimelineEntry)))
        for row in rows:
            data = views.unseal(session, keyring, row, views.PAYLOAD_AAD, row.payload_ct)
            sheet = sheets.resolve(registry, row.sheet_id, row.sheet_version)
            assert sheets.field_errors(registry, sheet, data) == [], (row.sheet_id, data)
            assert row.author_profession in may_write.get(row.sheet_id, {row.author_profession}), row.sheet_id


def test_clinical_dates_spread_over_the_six_weeks_since_the_teams_started(region):
    keyring = live.open_keyring(region.settings)
    today = today_jst()
    with live.committing_session(region.settings) as session:
        notes = select(TimelineEntry).where(TimelineEntry.sheet_id == "physician-visit")
        visits = [views.unseal(session, keyring, r, views.PAYLOAD_AAD, r.payload_ct)["visit_date"]
                  for r in session.scalars(notes)]
    days = {date.fromisoformat(v) for v in visits}
    assert all(today - timedelta(days=42) <= d <= today for d in days)
    weeks = {(today - d).days // 7 for d in days}
    assert len(weeks) >= 3, weeks


def test_the_timeline_shows_each_visit_note_posted_on_its_visit_day(region):
    keyring = live.open_keyring(region.settings)
    with live.committing_session(region.settings) as session:
        rows = list(session.scalars(select(TimelineEntry).where(TimelineEntry.sheet_id == "physician-visit")))
        pairs = [(views.unseal(session, keyring, r, views.PAYLOAD_AAD, r.payload_ct)["visit_date"],
                  r.record_posted_at.astimezone(JST).date().isoformat()) for r in rows]
    assert pairs and all(visit == posted for visit, posted in pairs), pairs[:5]


def test_most_patients_show_a_current_emergency_sheet_and_acp_to_their_attending_physician(region, client):
    shown = 0
    for patient in region.patients:
        if patient["name"].startswith(demo.FAMILY[demo.WITHDRAWN][0] + " "):
            continue
        headers = headers_for(region, region.member(patient, "attending_physician"))
        r = client.get(f"/api/v1/patients/{patient['id']}/summary", headers=headers)
        assert r.status_code == 200, r.text
        card = r.json()
        if card["emergency"] and card["acp"]:
            assert card["emergency"]["resuscitation"]["wish"] in ("dnar", "full_treatment", "not_confirmed")
            assert card["acp"]["record_date"] and card["attending_physician"]["doctor"]
            assert not card["resuscitation_conflict"]
            shown += 1
    assert shown >= 15


def test_a_revisited_acp_supersedes_the_first_and_the_emergency_sheet_links_the_current_one(region, client):
    patient = region.patient(3)  # i % 5 == 3: a second ACP talk a month on
    headers = headers_for(region, region.member(patient, "attending_physician"))
    card = client.get(f"/api/v1/patients/{patient['id']}/summary", headers=headers).json()
    assert card["acp"]["superseded_versions"] == 1
    assert card["emergency"]["resuscitation"]["acp_entry_id"] == card["acp"]["entry_id"]


def test_the_withdrawn_consent_patient_has_entries_the_team_can_no_longer_read(region, client):
    patient = region.patient(demo.WITHDRAWN)
    assert any(str(r.patient_id) == patient["id"] for r in entries(region))
    headers = headers_for(region, region.member(patient, "attending_physician"))
    r = client.get(f"/api/v1/patients/{patient['id']}/timeline", headers=headers)
    assert r.status_code in (403, 404), r.text
    assert client.get(f"/api/v1/patients/{patient['id']}/summary", headers=headers).status_code in (403, 404)


def test_the_office_a_consent_excludes_neither_wrote_nor_reads_that_patients_entries(region, client):
    patient = region.patient(demo.EXCLUDES_HIGASHI)
    with live.committing_session(region.settings) as session:
        higashi = session.scalars(select(Organisation).where(Organisation.name.like("ひがし%"))).one().id
    mine = [r for r in entries(region) if str(r.patient_id) == patient["id"]]
    assert mine and all(r.author_organisation_id != higashi for r in mine)
    kimura = "cm.kimura@midori.example"
    assert kimura in {m["email"] for m in patient["team"]}
    r = client.get(f"/api/v1/patients/{patient['id']}/timeline", headers=headers_for(region, kimura))
    assert r.status_code in (403, 404), r.text
    own = region.member(patient, "attending_physician")
    r = client.get(f"/api/v1/patients/{patient['id']}/timeline", headers=headers_for(region, own))
    assert r.status_code == 200 and r.json()["items"]


def test_discharge_sheets_are_addressed_to_the_care_managers_office_some_acknowledged_one_waiting(region,
                                                                                               client):
    with live.committing_session(region.settings) as session:
        rows = session.execute(
            select(TimelineEntry.id, TimelineEntry.patient_id, EntryRecipient.organisation_id,
                   EntryRecipient.acknowledged_at)
            .join(EntryRecipient, EntryRecipient.entry_id == TimelineEntry.id)
            .where(TimelineEntry.sheet_id == "discharge-info")
        ).all()
        offices = {o.id for o in session.scalars(
            select(Organisation).where(Organisation.kind == "care_management_office"))}
    assert rows and all(org in offices for _, _, org, _ in rows)
    waiting = [(entry_id, patient_id) for entry_id, patient_id, _, at in rows if at is None]
    assert len(waiting) == 1 and sum(at is not None for *_, at in rows) >= 2
    # The care manager sees it waiting for her receipt.
    entry_id, patient_id = waiting[0]
    patient = next(p for p in region.patients if p["id"] == str(patient_id))
    headers = headers_for(region, region.member(patient, "care_manager"))
    r = client.get(f"/api/v1/entries/{entry_id}", headers=headers)
    assert r.status_code == 200, r.text
    assert [x["acknowledged_at"] for x in r.json()["recipients"]] == [None]

