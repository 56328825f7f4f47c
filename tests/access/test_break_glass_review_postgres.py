"""Two administrators ending one break-the-glass grant at the same moment, on PostgreSQL (see
tests/interleave.py)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from renkei.access import break_glass
from renkei.access.models import BreakGlassGrant
from tests import factories, interleave
from tests.crypto import live

pytestmark = interleave.ONLY_ON_POSTGRES
settings = interleave.committed_settings  # the fixture, under the name these tests use


def _grant_and_two_admins(settings) -> tuple[uuid.UUID, dict[str, str], dict[str, str]]:
    """An emergency physician's grant on a patient of another team, and two of the hospital's admins."""
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        clinic = factories.make_org(session, name="かかりつけ在宅クリニック", kind="home_care_clinic")
        hospital = factories.make_org(session, name="同時審査総合病院", kind="hospital")
        physician = factories.make_user(session, clinic, profession="physician")
        er = factories.make_user(session, hospital, profession="physician")
        admins = [factories.make_user(session, hospital, profession="nurse", role="org_admin",
                                      keyring=keyring) for _ in range(2)]
        patient_id = factories.make_patient(session, keyring, physician)
        factories.grant_consent(session, keyring, patient_id, physician)
        er_headers, *admin_headers = (factories.auth_headers(session, settings, keyring, user)
                                      for user in [er, *admins])

    async def break_the_glass(client: httpx.AsyncClient) -> httpx.Response:
        found = await client.post("/api/v1/patients/lookup", headers=er_headers,
                                  json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
        assert found.status_code == 200 and found.json(), found.text
        return await client.post(f"/api/v1/patients/{patient_id}/break-glass", headers=er_headers,
                                 json={"reason_code": "emergency_transport", "reason": "心肺停止で搬送",
                                       "password": factories.PASSWORD, "confirm": True})
    [granted] = interleave.together(settings, break_the_glass)
    assert granted.status_code == 201, granted.text
    return uuid.UUID(granted.json()["id"]), admin_headers[0], admin_headers[1]


def test_of_two_admins_reviewing_one_grant_at_once_the_second_is_told_it_is_reviewed(settings, monkeypatch):
    grant_id, first_admin, second_admin = _grant_and_two_admins(settings)
    # The first review has read the grant and is ending it ("inappropriate") when the second one arrives.
    hold = interleave.hold_first_call(monkeypatch, settings, break_glass, "_end_now")
    path = f"/api/v1/break-glass/{grant_id}/review"
    first, second = interleave.run(
        settings,
        lambda c: c.post(path, headers=first_admin,
                         json={"disposition": "inappropriate", "note": "記録なし"}),
        lambda c: c.post(path, headers=second_admin, json={"disposition": "appropriate"}),
        hold)
    assert hold.outcome == interleave.WAITED
    assert first.status_code == 200, first.text
    assert second.status_code == 409, second.text
    with live.committing_session(settings) as session:
        grant = session.scalars(select(BreakGlassGrant).where(BreakGlassGrant.id == grant_id)).one()
    assert grant.disposition == "inappropriate" and grant.revoked_at is not None


def test_a_revoke_arriving_while_an_inappropriate_review_ends_the_grant_is_told_it_has_ended(
        settings, monkeypatch):
    grant_id, first_admin, second_admin = _grant_and_two_admins(settings)
    hold = interleave.hold_first_call(monkeypatch, settings, break_glass, "_end_now")
    first, second = interleave.run(
        settings,
        lambda c: c.post(f"/api/v1/break-glass/{grant_id}/review", headers=first_admin,
                         json={"disposition": "inappropriate", "note": "記録なし"}),
        lambda c: c.post(f"/api/v1/break-glass/{grant_id}/revoke", headers=second_admin),
        hold)
    assert hold.outcome == interleave.WAITED
    assert (first.status_code, second.status_code) == (200, 409), (first.text, second.text)
    with live.committing_session(settings) as session:
        grant = session.scalars(select(BreakGlassGrant).where(BreakGlassGrant.id == grant_id)).one()
    assert grant.revoked_by is not None and grant.disposition == "inappropriate"
    assert str(grant.revoked_by) == first.json()["revoked_by"]
