"""Timeline fixtures: the shared world plus a care manager and a hospital discharge coordinator on the team."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from renkei.directory.models import Organisation, User
from tests.factories import auth_headers, make_org
from tests.timeline.support import join_team


@dataclass
class Team:
    care_office: Organisation
    hospital: Organisation
    care_manager: User
    msw: User


@pytest.fixture
def team(db, world) -> Team:
    care_office = make_org(db, "みどり居宅介護支援事業所", "care_management_office")
    hospital = make_org(db, "みどり総合病院", "hospital")
    care_manager = join_team(db, world.patient_id, world.physician, care_office, profession="care_manager",
                             team_role="care_manager", name="高橋 健一")
    msw = join_team(db, world.patient_id, world.physician, hospital, profession="msw",
                    team_role="discharge_coordinator", name="佐藤 由美")
    return Team(care_office, hospital, care_manager, msw)


@pytest.fixture
def as_user(db, settings, keyring):
    """Bearer headers for a user: as_user(world.nurse)."""
    return lambda user: auth_headers(db, settings, keyring, user)
