"""Page tests (TestClient, cookie sessions): the world plus a care manager and a discharge coordinator."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from renkei.auth import service as auth_service
from renkei.auth.dependencies import SESSION_COOKIE
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
    """Bearer headers for the API: as_user(world.nurse)."""
    return lambda user: auth_headers(db, settings, keyring, user)


@pytest.fixture
def browse(client: TestClient, db, settings):
    """Sign `user` in with a cookie session, as the sign-in page does; returns the client."""
    def sign_in(user: User) -> TestClient:
        _, cookie = auth_service.start_session(db, settings=settings, user=user, kind="web")
        client.cookies.set(SESSION_COOKIE, cookie)
        return client
    return sign_in
