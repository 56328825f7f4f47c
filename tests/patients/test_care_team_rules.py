"""Care-team membership rules: who may join a team, who registers patients, who may end whose membership."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.patients.models import CareTeamMembership
from tests.factories import auth_headers, make_org, make_user, patient_data


def _membership_of(db, patient_id, user) -> str:
    return str(db.scalars(select(CareTeamMembership.id).where(
        CareTeamMembership.patient_id == patient_id, CareTeamMembership.user_id == user.id)).one())


def _denials(db, actor, action="manage_team") -> list[tuple[str, str | None]]:
    db.expire_all()
    return [(r.reason, r.event) for r in db.scalars(select(AuditEvent).where(
        AuditEvent.actor_user_id == actor.id, AuditEvent.action == action, AuditEvent.decision == "deny"))]


@pytest.mark.parametrize(("profession", "role"), [("coordinator", "member"), ("coordinator", "region_admin"),
                                                  ("physician", "region_admin")])
def test_coordinators_and_region_administrators_cannot_be_added_to_a_care_team(
    client, db, settings, keyring, world, profession, role,
):
    city = make_org(db, "みどり市役所", "municipality")
    user = make_user(db, city, profession=profession, role=role, name="連携 調整", keyring=keyring)
    nurse = auth_headers(db, settings, keyring, world.nurse)
    r = client.post(f"/api/v1/patients/{world.patient_id}/team", headers=nurse,
                    json={"user_id": str(user.id), "team_role": "other"})
    assert r.status_code == 422 and [f["path"] for f in r.json()["fields"]] == ["/user_id"]
    assert db.scalars(select(CareTeamMembership).where(CareTeamMembership.user_id == user.id)).all() == []
    assert _denials(db, world.nurse) == [("member_not_eligible", "team.add")]


@pytest.mark.parametrize(("profession", "role"), [("coordinator", "member"), ("coordinator", "org_admin"),
                                                  ("physician", "region_admin")])
def test_coordinators_and_region_administrators_do_not_register_patients(
    client, db, settings, keyring, world, profession, role,
):
    user = make_user(db, make_org(db, "みどり市役所", "municipality"), profession=profession, role=role,
                     keyring=keyring)
    r = client.post("/api/v1/patients", json=patient_data(name="新規 患者", team_role="other"),
                    headers=auth_headers(db, settings, keyring, user))
    assert r.status_code == 403
    assert db.scalars(select(CareTeamMembership).where(CareTeamMembership.user_id == user.id)).all() == []


def test_a_member_ends_their_own_membership(client, db, settings, keyring, world):
    nurse = auth_headers(db, settings, keyring, world.nurse)
    own = _membership_of(db, world.patient_id, world.nurse)
    r = client.request("DELETE", f"/api/v1/patients/{world.patient_id}/team/{own}", headers=nurse,
                       json={"reason": "担当交代"})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=nurse).status_code == 404


def test_a_member_cannot_end_the_attending_physicians_membership(client, db, settings, keyring, world):
    therapist = make_user(db, make_org(db, "みどりリハビリ", "care_service_provider"), profession="therapist")
    doctor = auth_headers(db, settings, keyring, world.physician)
    added = client.post(f"/api/v1/patients/{world.patient_id}/team", headers=doctor,
                        json={"user_id": str(therapist.id), "team_role": "therapist"})
    assert added.status_code == 201, added.text
    physician_membership = _membership_of(db, world.patient_id, world.physician)
    for member in (world.nurse, therapist):
        r = client.request("DELETE", f"/api/v1/patients/{world.patient_id}/team/{physician_membership}",
                           headers=auth_headers(db, settings, keyring, member), json={"reason": "x"})
        assert r.status_code == 403 and "山田" not in r.text
        assert _denials(db, member) == [("not_team_lead", "team.end")]
    assert client.get(f"/api/v1/patients/{world.patient_id}/timeline", headers=doctor).status_code == 200


def test_the_care_manager_and_the_attending_physician_end_other_members(client, db, settings, keyring, world):
    care_manager = make_user(db, make_org(db, "みどり居宅", "care_management_office"), profession="care_manager")
    pharmacist = make_user(db, make_org(db, "みどり薬局", "pharmacy"), profession="pharmacist")
    doctor = auth_headers(db, settings, keyring, world.physician)
    for user, role in ((care_manager, "care_manager"), (pharmacist, "pharmacist")):
        r = client.post(f"/api/v1/patients/{world.patient_id}/team", headers=doctor,
                        json={"user_id": str(user.id), "team_role": role})
        assert r.status_code == 201, r.text
    team = f"/api/v1/patients/{world.patient_id}/team"
    by_care_manager = client.request(
        "DELETE", f"{team}/{_membership_of(db, world.patient_id, pharmacist)}",
        headers=auth_headers(db, settings, keyring, care_manager), json={"reason": "訪問終了"})
    assert by_care_manager.status_code == 200 and by_care_manager.json()["active"] is False
    by_physician = client.request(
        "DELETE", f"{team}/{_membership_of(db, world.patient_id, world.nurse)}",
        headers=doctor, json={"reason": "事業所変更"})
    assert by_physician.status_code == 200
    db.expire_all()
    ended = db.scalars(select(AuditEvent).where(AuditEvent.event == "team.end",
                                                AuditEvent.decision == "allow"))
    assert {r.actor_user_id for r in ended} == {care_manager.id, world.physician.id}
