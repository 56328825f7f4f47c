"""A patient's access log (the disclosure request) and the region administrator's audit search."""

from __future__ import annotations

from tests.access.support import Ctx
from tests.factories import auth_headers, make_user


def test_access_log_answers_who_saw_the_record_when_and_on_what_grounds(client, db, settings, keyring, world):
    ctx = Ctx(client, db, settings, keyring, world)
    nurse, outsider = ctx.headers(world.nurse), ctx.headers(world.outsider)
    client.get(f"/api/v1/patients/{world.patient_id}", headers=nurse)
    client.get(f"/api/v1/patients/{world.patient_id}", headers=outsider)
    grant = ctx.break_glass(ctx.er_physician)
    log = client.get(f"/api/v1/patients/{world.patient_id}/access-log", headers=ctx.headers(world.physician))
    assert log.status_code == 200
    lines = {(e["actor_name"], e["action"], e["decision"], e["reason"]) for e in log.json()}
    assert (world.nurse.name, "read_registration", "allow", "team_consent") in lines
    assert (world.outsider.name, "read_registration", "deny", "not_on_team") in lines
    assert (ctx.er_physician.name, "lookup", "allow", "exact_match") in lines
    assert (ctx.er_physician.name, "break_glass", "allow", "emergency_transport") in lines
    entry = next(e for e in log.json() if e["action"] == "break_glass")
    assert entry["grant_id"] == grant["id"] and entry["organisation_name"] == ctx.hospital.name
    seqs = [e["seq"] for e in log.json()]
    assert seqs == sorted(seqs, reverse=True)
    older = client.get(f"/api/v1/patients/{world.patient_id}/access-log?before_seq={seqs[1]}&limit=1",
                       headers=ctx.headers(world.physician)).json()
    assert [e["seq"] for e in older] == [seqs[2]]
    page = client.get(f"/patients/{world.patient_id}/access-log", headers=ctx.headers(world.physician))
    assert page.status_code == 200 and "閲覧記録" in page.text and "緊急時アクセス" in page.text
    assert world.nurse.name in page.text


def test_access_log_is_not_shown_outside_the_team(client, db, settings, keyring, world):
    r = client.get(f"/api/v1/patients/{world.patient_id}/access-log",
                   headers=auth_headers(db, settings, keyring, world.outsider))
    assert r.status_code == 404 and "山田" not in r.text


def test_region_admin_searches_the_log_by_actor_or_patient_and_the_search_is_logged(client, db, settings, keyring,
                                                                                    world):
    region = make_user(db, world.other_office, profession="coordinator", role="region_admin", keyring=keyring)
    headers = auth_headers(db, settings, keyring, region)
    client.get(f"/api/v1/patients/{world.patient_id}", headers=auth_headers(db, settings, keyring, world.nurse))
    by_actor = client.get(f"/api/v1/audit/events?actor_email={world.nurse.email}", headers=headers)
    assert by_actor.status_code == 200
    assert by_actor.json() and {e["actor_user_id"] for e in by_actor.json()} == {str(world.nurse.id)}
    by_patient = client.get(f"/api/v1/audit/events?patient_id={world.patient_id}&decision=allow", headers=headers)
    assert {e["patient_id"] for e in by_patient.json()} == {str(world.patient_id)}
    assert {e["decision"] for e in by_patient.json()} == {"allow"}
    mine = client.get(f"/api/v1/audit/events?actor_id={region.id}", headers=headers).json()
    assert [e["action"] for e in mine][:1] == ["audit_search"]
    page = client.get(f"/admin/audit?actor_email={world.nurse.email}", headers=headers)
    assert page.status_code == 200 and "監査ログ検索" in page.text and world.nurse.name in page.text
    unknown = client.get("/api/v1/audit/events?actor_email=nobody@example.invalid", headers=headers)
    assert unknown.json() == []


def test_members_do_not_search_the_audit_log(client, db, settings, keyring, world):
    headers = auth_headers(db, settings, keyring, world.physician)
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 403
    assert client.get("/admin/audit", headers=headers).status_code == 403
