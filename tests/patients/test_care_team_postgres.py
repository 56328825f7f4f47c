"""Two changes of one care team at the same moment, on PostgreSQL (see tests/interleave.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership
from tests import factories, interleave
from tests.crypto import live

pytestmark = interleave.ONLY_ON_POSTGRES
settings = interleave.committed_settings  # the fixture, under the name these tests use


def _pharmacist(settings) -> uuid.UUID:
    with live.committing_session(settings) as session:
        pharmacy = factories.make_org(session, name="同時追加薬局", kind="pharmacy")
        return factories.make_user(session, pharmacy, profession="pharmacist").id


def _memberships(settings, patient_id: uuid.UUID, user_id: uuid.UUID) -> list[CareTeamMembership]:
    with live.committing_session(settings) as session:
        return list(session.scalars(select(CareTeamMembership).where(
            CareTeamMembership.patient_id == patient_id, CareTeamMembership.user_id == user_id)))


def test_the_same_professional_added_twice_at_once_joins_the_team_once(settings, monkeypatch):
    team = interleave.team(settings)
    pharmacist = _pharmacist(settings)
    body = {"user_id": str(pharmacist), "team_role": "pharmacist", "start_date": today_jst().isoformat()}
    path = f"/api/v1/patients/{team.patient_id}/team"
    # The first addition has found the role free and is checking its dates when the second one arrives.
    hold = interleave.hold_first_call(monkeypatch, settings, patient_service, "_check_start")
    first, second = interleave.run(
        settings,
        lambda c: c.post(path, headers=team.physician, json=body),
        lambda c: c.post(path, headers=team.colleague, json=body),
        hold)
    assert hold.outcome == interleave.WAITED
    assert sorted([first.status_code, second.status_code]) == [201, 409], (first.text, second.text)
    assert len(_memberships(settings, team.patient_id, pharmacist)) == 1


def test_one_membership_ended_twice_at_once_keeps_the_first_end(settings, monkeypatch):
    team = interleave.team(settings)
    [nurse] = _memberships(settings, team.patient_id, team.nurse_id)
    path = f"/api/v1/patients/{team.patient_id}/team/{nurse.id}"
    # The nurse ends her own membership; while her request is working out the end date, the attending
    # physician ends it too, with another reason.
    hold = interleave.hold_first_call(monkeypatch, settings, patient_service, "_end_date")
    first, second = interleave.run(
        settings,
        lambda c: c.request("DELETE", path, headers=team.nurse, json={"reason": "担当交代"}),
        lambda c: c.request("DELETE", path, headers=team.physician, json={"reason": "訪問終了"}),
        hold)
    assert hold.outcome == interleave.WAITED
    assert (first.status_code, second.status_code) == (200, 409), (first.text, second.text)
    [ended] = _memberships(settings, team.patient_id, team.nurse_id)
    assert ended.end_reason == "担当交代"
