"""What a break-the-glass grant reaches: the summary, the current emergency sheet and the current ACP, and
nothing else (no earlier versions, no superseded ACP, no history); and that it works whatever the consent
says, with the reviewers told when the patient had withdrawn it."""

from __future__ import annotations

import uuid

import pytest

from renkei.access.models import BreakGlassGrant
from tests.access.support import Ctx
from tests.factories import make_user
from tests.printing.support import intake, photo, printout
from tests.timeline.support import etag_of, example, posted


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


def test_a_grant_reads_the_current_emergency_sheet_and_acp_and_nothing_older(ctx):
    client, pid = ctx.client, ctx.patient_id
    doctor = ctx.headers(ctx.world.physician)
    first = posted(client, doctor, pid, "emergency-info")
    amended = client.post(f"/api/v1/entries/{first['id']}/amend", headers={**doctor, "If-Match": etag_of(first)},
                          json={"data": example("emergency-info"), "reason": "服薬の変更"})
    assert amended.status_code == 201, amended.text
    current = amended.json()
    old_acp = posted(client, doctor, pid, "acp")
    acp = posted(client, doctor, pid, "acp")
    message = posted(client, doctor, pid, "message", {"text": "救急には不要な連絡"})
    ctx.break_glass(ctx.er_physician)
    er = ctx.headers(ctx.er_physician)

    feed = client.get(f"/api/v1/patients/{pid}/timeline", headers=er)
    assert feed.status_code == 200
    assert sorted(e["id"] for e in feed.json()["items"]) == sorted([current["id"], acp["id"]])
    assert client.get(f"/api/v1/patients/{pid}/summary", headers=er).json()["acp"]["entry_id"] == acp["id"]
    for entry_id in (current["id"], acp["id"]):
        assert client.get(f"/api/v1/entries/{entry_id}", headers=er).status_code == 200
        assert client.get(f"/entries/{entry_id}", headers=er).status_code == 200
        history = client.get(f"/api/v1/entries/{entry_id}/history", headers=er)
        assert [v["id"] for v in history.json()] == [entry_id], "a grant sees no earlier version"
    for entry_id in (first["id"], old_acp["id"], message["id"]):
        assert client.get(f"/api/v1/entries/{entry_id}", headers=er).status_code == 404
        assert client.get(f"/api/v1/entries/{entry_id}/history", headers=er).status_code == 404
        assert client.get(f"/entries/{entry_id}", headers=er).status_code == 404
    # The team still reads every version.
    team = client.get(f"/api/v1/entries/{current['id']}/history", headers=doctor).json()
    assert [v["id"] for v in team] == [current["id"], first["id"]]


def test_the_emergency_card_still_prints_for_a_grant_holder(ctx):
    doctor = ctx.headers(ctx.world.physician)
    posted(ctx.client, doctor, ctx.patient_id, "emergency-info")
    ctx.break_glass(ctx.er_physician)
    card = ctx.client.get(f"/print/patients/{ctx.patient_id}/emergency-card.html",
                          headers=ctx.headers(ctx.er_physician))
    assert card.status_code == 200


def test_break_the_glass_works_after_withdrawal_and_the_reviewers_are_told(ctx):
    ctx.withdraw()
    grant = ctx.break_glass(ctx.er_physician)  # found by exact lookup although consent was withdrawn
    assert grant["consent_state"] == "consent_withdrawn"
    assert ctx.db.get(BreakGlassGrant, uuid.UUID(grant["id"])).consent_state == "consent_withdrawn"
    er = ctx.headers(ctx.er_physician)
    assert ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/summary", headers=er).status_code == 200
    admin = ctx.headers(ctx.hospital_admin)
    queue = ctx.client.get("/api/v1/break-glass/reviews", headers=admin).json()
    assert [(g["id"], g["consent_state"]) for g in queue] == [(grant["id"], "consent_withdrawn")]
    page = ctx.client.get("/admin/break-glass", headers=admin)
    assert "同意撤回中の患者への緊急時アクセス" in page.text
    assert f'href="/admin/audit?grant_id={grant["id"]}"' in page.text


def test_a_grant_under_consent_in_force_carries_no_consent_warning(ctx):
    grant = ctx.break_glass(ctx.er_physician)
    assert grant["consent_state"] is None
    page = ctx.client.get("/admin/break-glass", headers=ctx.headers(ctx.hospital_admin))
    assert "同意撤回中" not in page.text


def test_those_who_may_not_break_the_glass_still_do_not_find_a_withdrawn_patient(ctx):
    ctx.withdraw()
    pharmacist = make_user(ctx.db, ctx.hospital, profession="pharmacist")
    r = ctx.client.post("/api/v1/patients/lookup", headers=ctx.headers(pharmacist),
                        json={"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-02"})
    assert r.status_code == 200 and r.json() == []


def test_a_grant_lists_no_paper_intakes_and_opens_no_paper_entry(ctx):
    """Paper is never the current emergency sheet (the summary and card read structured data only): the
    grant's list of paper intakes is empty even when an emergency form was filed on paper."""
    doctor, nurse = ctx.headers(ctx.world.physician), ctx.headers(ctx.world.nurse)
    pdf = printout(ctx.client, doctor, f"/print/blank/emergency-info.pdf?patient_id={ctx.patient_id}")
    filed = intake(ctx.client, nurse, photo(pdf))
    assert filed.status_code == 201, filed.text
    ctx.break_glass(ctx.er_physician)
    er = ctx.headers(ctx.er_physician)
    listed = ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/paper-intakes", headers=er)
    assert listed.status_code == 200 and listed.json() == []
    assert ctx.client.get(f"/api/v1/entries/{filed.json()['entry_id']}", headers=er).status_code == 404
    assert ctx.client.get(f"/api/v1/attachments/{filed.json()['attachment_id']}", headers=er).status_code == 404
    team = ctx.client.get(f"/api/v1/patients/{ctx.patient_id}/paper-intakes", headers=nurse).json()
    assert [i["id"] for i in team] == [filed.json()["id"]]
