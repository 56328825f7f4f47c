"""The outbox: every change appends its events in its own transaction, ids and kinds only, and the inbox
gets rows for the people an event concerns (addressees, the team for urgent entries, the ACP/emergency
sheets and consent withdrawal, the member whose membership changed, break-the-glass recipients).
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from renkei.notify import service as notify
from renkei.notify.models import Notification, OutboxEvent, WsTicket
from tests.access.support import Ctx
from tests.factories import PASSWORD, auth_headers, make_user
from tests.timeline.support import example


def _events(db, after: int = 0, **where) -> list[OutboxEvent]:
    q = select(OutboxEvent).where(OutboxEvent.seq > after)
    for column, value in where.items():
        q = q.where(getattr(OutboxEvent, column) == value)
    return list(db.scalars(q.order_by(OutboxEvent.seq)))


def _inbox(db, user, kind: str | None = None) -> list[Notification]:
    q = select(Notification).where(Notification.user_id == user.id)
    if kind:
        q = q.where(Notification.kind == kind)
    return list(db.scalars(q))


@pytest.fixture
def ctx(client, db, settings, keyring, world) -> Ctx:
    return Ctx(client, db, settings, keyring, world)


def _post(ctx: Ctx, user, **body):
    payload = {"sheet": "message", "data": {"text": "褥瘡の処置を変更しました"}, "status": "final"} | body
    return ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/entries", headers=ctx.headers(user),
                           json=payload)


def test_posting_an_entry_appends_its_event_with_ids_only_and_a_refused_post_appends_nothing(ctx):
    start = notify.head(ctx.db)
    entry = _post(ctx, ctx.world.nurse).json()
    [event] = _events(ctx.db, start)
    assert (event.kind, event.audience, event.patient_id, event.category, event.urgent) == (
        "entry.created", "team", ctx.patient_id, "message", False)
    assert json.loads(event.refs) == {"entry_id": entry["id"], "record_id": entry["id"]}
    assert "褥瘡" not in event.refs
    assert _post(ctx, ctx.world.outsider).status_code == 404
    assert _post(ctx, ctx.world.nurse, data={"wrong": 1}).status_code == 422
    assert _events(ctx.db, event.seq) == []


def test_drafts_are_private_until_posted_then_each_change_is_one_event_in_order(ctx):
    start = notify.head(ctx.db)
    nurse = ctx.headers(ctx.world.nurse)
    draft = _post(ctx, ctx.world.nurse, status="draft").json()
    assert _events(ctx.db, start) == []
    etag = f'"{draft["version"]}.{draft["revision"]}"'
    posted = ctx.client.put(f"/api/v1/entries/{draft['id']}", headers={**nurse, "If-Match": etag},
                            json={"data": {"text": "確定"}, "status": "final"})
    assert posted.status_code == 200, posted.text
    amended = ctx.client.post(f"/api/v1/entries/{draft['id']}/amend",
                              headers={**nurse, "If-Match": posted.headers["etag"]},
                              json={"data": {"text": "訂正"}, "reason": "誤記"}).json()
    ctx.client.post(f"/api/v1/entries/{amended['id']}/entered-in-error", headers=nurse,
                    json={"reason": "誤入力"})
    events = _events(ctx.db, start)
    assert [e.kind for e in events] == ["entry.created", "entry.amended", "entry.entered_in_error"]
    assert [json.loads(e.refs)["entry_id"] for e in events] == [draft["id"], amended["id"], amended["id"]]
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_an_urgent_entry_reaches_every_readers_inbox_and_addressees_are_asked_to_acknowledge(ctx):
    start = notify.head(ctx.db)
    entry = _post(ctx, ctx.world.physician, priority="urgent",
                  recipients=[{"user_id": str(ctx.care_manager.id)}]).json()
    events = _events(ctx.db, start)
    assert [(e.kind, e.user_id, e.urgent) for e in events] == [
        ("entry.created", None, True), ("acknowledgement.requested", ctx.care_manager.id, True)]
    [asked] = _inbox(ctx.db, ctx.care_manager)
    assert (asked.kind, asked.urgent, json.loads(asked.refs)["entry_id"]) == (
        "acknowledgement.requested", True, entry["id"])
    [told] = _inbox(ctx.db, ctx.world.nurse, "entry.urgent")
    assert told.urgent and told.patient_id == ctx.patient_id
    assert _inbox(ctx.db, ctx.world.physician) == []  # the author is not told of their own entry
    assert _inbox(ctx.db, ctx.world.outsider) == []
    ack = ctx.client.post(f"/api/v1/entries/{entry['id']}/acknowledge", headers=ctx.headers(ctx.care_manager))
    assert ack.status_code == 200, ack.text
    assert [e.kind for e in _events(ctx.db, events[-1].seq)] == ["entry.acknowledged"]
    assert [n.kind for n in _inbox(ctx.db, ctx.world.physician)] == ["entry.acknowledged"]


def test_an_entry_addressed_to_an_office_asks_its_team_members_again_when_amended(ctx):
    start = notify.head(ctx.db)
    sent = _post(ctx, ctx.world.physician, recipients=[{"organisation_id": str(ctx.care_office.id)}])
    assert sent.status_code == 201, sent.text
    amended = ctx.client.post(f"/api/v1/entries/{sent.json()['id']}/amend",
                              headers={**ctx.headers(ctx.world.physician), "If-Match": sent.headers["etag"]},
                              json={"data": {"text": "処置の変更を訂正"}, "reason": "誤記"})
    assert amended.status_code == 201, amended.text
    asked = [(e.user_id, json.loads(e.refs)["entry_id"])
             for e in _events(ctx.db, start, kind="acknowledgement.requested")]
    # Each version asks for its own acknowledgement, of the office's member on the team (not of the author).
    assert asked == [(ctx.care_manager.id, sent.json()["id"]), (ctx.care_manager.id, amended.json()["id"])]


def test_an_urgent_entry_marked_entered_in_error_is_announced_to_those_told_of_it(ctx):
    entry = _post(ctx, ctx.world.physician, priority="urgent").json()
    r = ctx.client.post(f"/api/v1/entries/{entry['id']}/entered-in-error",
                        headers=ctx.headers(ctx.world.physician), json={"reason": "別の患者の記録"})
    assert r.status_code == 200, r.text
    assert sorted(n.kind for n in _inbox(ctx.db, ctx.world.nurse)) == ["entry.entered_in_error", "entry.urgent"]
    assert all("別の患者" not in n.refs for n in _inbox(ctx.db, ctx.world.nurse))


def test_an_acp_entry_changes_the_summary_and_tells_the_team_inbox(ctx):
    start = notify.head(ctx.db)
    r = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/entries",
                        headers=ctx.headers(ctx.world.physician),
                        json={"sheet": "acp", "data": example("acp"), "status": "final"})
    assert r.status_code == 201, r.text
    kinds = [(e.kind, e.category) for e in _events(ctx.db, start)]
    assert kinds == [("entry.created", "acp"), ("summary.changed", "acp")]
    assert [n.kind for n in _inbox(ctx.db, ctx.world.nurse)] == ["summary.changed"]


def test_consent_changes_are_events_and_a_withdrawal_reaches_the_teams_inbox(ctx):
    start = notify.head(ctx.db)
    ctx.withdraw()
    [event] = _events(ctx.db, start)
    assert (event.kind, event.audience, json.loads(event.refs)) == (
        "consent.withdrawn", "team", {"consent_id": str(ctx.consent_id)})
    told = ctx.db.scalars(select(Notification.user_id).where(Notification.kind == "consent.withdrawn"))
    assert set(told) == {ctx.world.nurse.id, ctx.care_manager.id}


def test_team_changes_become_events_and_tell_the_member_before_the_request_commits(ctx):
    start = notify.head(ctx.db)
    physician = ctx.headers(ctx.world.physician)
    added = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/team", headers=physician,
                            json={"user_id": str(ctx.er_physician.id), "team_role": "physician"})
    assert added.status_code == 201, added.text
    ended = ctx.client.request("DELETE", f"/api/v1/patients/{ctx.patient_id}/team/{ctx.membership_id}",
                               headers=physician)
    assert ended.status_code == 200, ended.text
    events = _events(ctx.db, start)
    assert [(e.kind, json.loads(e.refs)["user_id"]) for e in events] == [
        ("team.member_added", str(ctx.er_physician.id)), ("team.member_ended", str(ctx.world.nurse.id))]
    assert [n.kind for n in _inbox(ctx.db, ctx.er_physician)] == ["team.member_added"]
    assert [n.kind for n in _inbox(ctx.db, ctx.world.nurse)] == ["team.member_ended"]


def test_a_refused_team_change_leaves_no_event(ctx):
    start = notify.head(ctx.db)
    r = ctx.client.post(f"/api/v1/patients/{ctx.patient_id}/team", headers=ctx.headers(ctx.world.physician),
                        json={"user_id": str(ctx.world.nurse.id), "team_role": "visiting_nurse"})
    assert r.status_code == 409
    assert _events(ctx.db, start) == []


def test_logout_and_disabling_an_account_append_control_events_for_the_hubs(ctx):
    start = notify.head(ctx.db)
    headers = ctx.headers(ctx.world.nurse)
    me = ctx.client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200
    assert ctx.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    admin = auth_headers(ctx.db, ctx.settings, ctx.keyring, ctx.world.clinic_admin)
    disabled = ctx.client.post(f"/api/v1/staff/{ctx.world.physician.id}/disable", headers=admin)
    assert disabled.status_code == 200, disabled.text
    events = _events(ctx.db, start)
    assert [(e.kind, e.audience) for e in events] == [("sessions.ended", "control")] * 2
    assert set(json.loads(events[0].refs)) == {"session_id"}
    assert events[1].user_id == ctx.world.physician.id and json.loads(events[1].refs) == {}


def test_a_stale_draft_save_appends_a_conflict_event_although_the_request_fails(ctx):
    nurse = ctx.headers(ctx.world.nurse)
    draft = _post(ctx, ctx.world.nurse, status="draft").json()
    start = notify.head(ctx.db)
    r = ctx.client.put(f"/api/v1/entries/{draft['id']}", headers={**nurse, "If-Match": '"1.99"'},
                       json={"data": {"text": "古い版からの保存"}})
    assert r.status_code == 412
    [event] = _events(ctx.db, start)
    assert (event.kind, event.user_id, json.loads(event.refs)) == (
        "draft.conflict", ctx.world.nurse.id, {"entry_id": draft["id"]})


def test_break_glass_tells_the_team_live_and_the_requesters_admin_directly(ctx, keyring):
    hospital_admin = make_user(ctx.db, ctx.hospital, profession="nurse", role="org_admin", keyring=keyring)
    start = notify.head(ctx.db)
    grant = ctx.break_glass(ctx.er_physician)
    events = _events(ctx.db, start)
    assert [(e.kind, e.audience, e.user_id, e.urgent) for e in events] == [
        ("break_glass", "team", None, True), ("break_glass", "user", hospital_admin.id, True)]
    assert all(json.loads(e.refs) == {"grant_id": grant["id"]} for e in events)


def test_event_references_must_be_ids_or_codes(db):
    with pytest.raises(ValueError):
        notify.append(db, kind="entry.created", audience=notify.Audience.team, refs={"text": "山田さん転倒"})
    with pytest.raises(ValueError):
        notify.append(db, kind="entry.created", audience=notify.Audience.team, refs={"seq": uuid.uuid4()})


def test_a_ws_ticket_is_long_random_short_lived_and_stored_only_as_a_hash(client, db, settings, keyring,
                                                                          world):
    headers = auth_headers(db, settings, keyring, world.nurse)
    r = client.post("/api/v1/ws-ticket", headers=headers)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"ticket", "expires_in"} and body["expires_in"] <= 30
    assert len(body["ticket"]) >= 43  # 256 bits, URL-safe base64
    stored = db.scalars(select(WsTicket).where(WsTicket.user_id == world.nurse.id)).all()
    assert len(stored) == 1 and body["ticket"] not in stored[0].token_hash
    assert client.post("/api/v1/ws-ticket").status_code == 401
    for _ in range(9):
        assert client.post("/api/v1/ws-ticket", headers=headers).status_code == 201
    assert client.post("/api/v1/ws-ticket", headers=headers).status_code == 429
    assert PASSWORD not in r.text
