"""After a withdrawal or expiry, the team's physicians and care managers (not only the registrar) can record
a new consent; a written consent waits for its signed paper, which can be attached later, once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.consent.models import Consent, ConsentDocument
from renkei.db.types import today_jst
from tests.access.support import PDF, Ctx, join_team
from tests.factories import PASSWORD, make_user

TODAY = today_jst().isoformat()
BODY = {"given_by": "patient", "method": "verbal", "scope": "blanket", "obtained_on": TODAY,
        "password": PASSWORD}


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


def _renew(ctx: Ctx, headers: dict[str, str]):
    return ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/consents", headers=headers, json=BODY)


@pytest.mark.parametrize("ending", ["withdrawal", "expiry"])
def test_the_teams_care_manager_renews_a_consent_that_is_no_longer_in_force(ctx, ending):
    ctx.withdraw() if ending == "withdrawal" else ctx.expire_consent()
    cm = ctx.headers(ctx.care_manager)
    pid = ctx.patient_id
    # Nothing clinical while no consent is in force, but the pages needed to record one open.
    assert ctx.client.get(f"/api/v1/patients/{pid}/timeline", headers=cm).status_code == 404
    assert [p["id"] for p in ctx.client.get("/api/v1/patients", headers=cm).json()] == [str(pid)]
    assert ctx.client.get(f"/patients/{pid}/consents", headers=cm).status_code == 200
    r = _renew(ctx, cm)
    assert r.status_code == 201, r.text
    assert r.json()["recorded_by"] == str(ctx.care_manager.id) and r.json()["status"] == "active"
    assert ctx.client.get(f"/api/v1/patients/{pid}/timeline", headers=cm).status_code == 200


def test_a_consent_can_be_renewed_after_its_registrar_left_the_team(ctx):
    ctx.withdraw()
    doctor = ctx.headers(ctx.world.physician)
    team = ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/team", headers=doctor).json()
    registrar = next(m for m in team if m["user_id"] == str(ctx.world.physician.id))
    ended = ctx.client.delete(f"/api/v1/patients/{ctx.patient_id}/team/{registrar['id']}", headers=doctor)
    assert ended.status_code == 200, ended.text
    assert _renew(ctx, ctx.headers(ctx.care_manager)).status_code == 201


@pytest.mark.parametrize("profession", ["nurse", "pharmacist"])
def test_other_members_neither_see_nor_renew_a_withdrawn_patient(ctx, profession):
    member = ctx.world.nurse
    if profession == "pharmacist":
        member = make_user(ctx.db, ctx.world.nursing, profession="pharmacist")
        join_team(ctx.db, ctx.world, member, "pharmacist")
    ctx.withdraw()
    headers = ctx.headers(member)
    assert _renew(ctx, headers).status_code == 404
    assert ctx.client.get(f"/api/v1/patients/{ctx.patient_id}", headers=headers).status_code == 404
    assert ctx.client.get("/api/v1/patients", headers=headers).json() == []


def test_a_renewer_does_not_override_a_consent_that_leaves_their_office_out(ctx):
    ctx.exclude_care_office()
    r = _renew(ctx, ctx.headers(ctx.care_manager))
    assert r.status_code == 404


# -- the signed paper ---------------------------------------------------------------------------------


def test_a_written_consent_waits_for_its_scan_which_the_page_attaches_later_once(ctx):
    doctor = ctx.headers(ctx.world.physician)
    pid, cid = ctx.patient_id, ctx.consent_id
    listed = ctx.client.get(f"/api/v1/patients/{pid}/consents", headers=doctor).json()
    assert listed[0]["method"] == "written" and listed[0]["awaiting_scan"] is True
    page = ctx.client.get(f"/patients/{pid}/consents", headers=doctor)
    assert "署名済み同意書の取込み待ち" in page.text
    assert f'action="/patients/{pid}/consents/{cid}/attachments"' in page.text
    for _ in range(2):  # a double tap on a slow network
        r = ctx.client.post(f"/patients/{pid}/consents/{cid}/attachments", headers=doctor,
                            files={"file": ("scan.pdf", PDF, "application/pdf")}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith(f"/patients/{pid}/consents")
    assert len(ctx.db.scalars(select(ConsentDocument).where(ConsentDocument.consent_id == cid)).all()) == 1
    listed = ctx.client.get(f"/api/v1/patients/{pid}/consents", headers=doctor).json()
    assert listed[0]["awaiting_scan"] is False and len(listed[0]["documents"]) == 1
    page = ctx.client.get(f"/patients/{pid}/consents", headers=doctor)
    assert "署名済み同意書の取込み待ち" not in page.text


def test_the_awaiting_scan_notice_is_in_english_too(ctx):
    ctx.client.cookies.set("lang", "en")
    page = ctx.client.get(f"/patients/{ctx.patient_id}/consents", headers=ctx.headers(ctx.world.physician))
    assert "Signed form: scan awaiting" in page.text


def test_a_verbal_consent_waits_for_no_scan(ctx):
    doctor = ctx.headers(ctx.world.physician)
    assert _renew(ctx, doctor).status_code == 201
    listed = ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/consents", headers=doctor).json()
    assert [c["awaiting_scan"] for c in listed] == [False, False]
    assert ctx.db.scalar(select(Consent.method).where(Consent.id == ctx.consent_id)) == "written"


def test_a_scan_that_is_not_a_pdf_or_image_is_named_next_to_the_file_field(ctx):
    doctor = ctx.headers(ctx.world.physician)
    r = ctx.client.post(f"/patients/{ctx.patient_id}/consents/{ctx.consent_id}/attachments", headers=doctor,
                        files={"file": ("scan.txt", b"just text", "text/plain")})
    assert r.status_code == 415
    assert 'id="s-file-err"' in r.text and "PDF・JPEG・PNG のファイルを選んでください" in r.text
