"""Two requests on one entry (or one consent) at the same moment, on PostgreSQL.

Real, committed transactions on a database of the test's own; the first request is held inside its
transaction at a chosen step while the second runs. SQLite runs a process's transactions one after another
(BEGIN IMMEDIATE), so these interleavings cannot happen there.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from renkei.consent import service as consent_service
from renkei.consent.models import Consent
from renkei.db.types import today_jst
from renkei.timeline import service as timeline
from renkei.timeline.models import EntryStatus, TimelineEntry
from tests import factories, interleave
from tests.crypto import live

pytestmark = interleave.ONLY_ON_POSTGRES
settings = interleave.committed_settings  # the fixture, under the name these tests use


def _post(settings, team: interleave.Team, **body) -> dict:
    [r] = interleave.together(settings, lambda c: c.post(f"/api/v1/patients/{team.patient_id}/entries",
                                                         headers=team.physician,
                                                         json={"sheet": "message", "version": 1, **body}))
    assert r.status_code == 201, r.text
    return r.json()


def test_acknowledging_while_the_same_nurse_opens_the_entry_elsewhere_does_not_deadlock(
        settings, monkeypatch):
    team = interleave.team(settings)
    sent = _post(settings, team, data={"text": "退院日が決まりました。初回訪問の調整をお願いします"},
                 recipients=[{"user_id": str(team.nurse_id)}])
    # The acknowledgement holds its lock on the entry while the nurse's other tablet opens the entry (a read
    # receipt, whose foreign key takes KEY SHARE on the entry); then it records its own read receipt.
    hold = interleave.hold_first_call(monkeypatch, settings, timeline, "_load", locking=True)
    ack, opened = interleave.run(
        settings,
        lambda c: c.post(f"/api/v1/entries/{sent['id']}/acknowledge", headers=team.nurse),
        lambda c: c.get(f"/api/v1/entries/{sent['id']}", headers=team.nurse),
        hold)
    assert hold.outcome == interleave.ANSWERED
    assert (ack.status_code, opened.status_code) == (200, 200), (ack.text, opened.text)
    [recipient] = ack.json()["recipients"]
    assert recipient["acknowledged_at"] is not None and ack.json()["read_by_me"] is True


def test_marking_in_error_while_an_amendment_commits_refuses_instead_of_withdrawing_the_old_version(
        settings, monkeypatch):
    team = interleave.team(settings)
    sent = _post(settings, team, data={"text": "明日の訪問は午後2時です"})
    # The withdrawal has loaded the entry (to find its patient) and waits for the lock while the amendment
    # commits: it must then see that the version it meant is no longer the current one.
    hold = interleave.hold_first_call(monkeypatch, settings, timeline, "_load")
    withdrawn, amended = interleave.run(
        settings,
        lambda c: c.post(f"/api/v1/entries/{sent['id']}/entered-in-error", headers=team.physician,
                         json={"reason": "別の患者の記録"}),
        lambda c: c.post(f"/api/v1/entries/{sent['id']}/amend",
                         headers={**team.physician, "If-Match": f'"{sent["version"]}.{sent["revision"]}"'},
                         json={"data": {"text": "明日の訪問は午後3時です"}, "reason": "時刻の訂正"}),
        hold)
    assert hold.outcome == interleave.ANSWERED
    assert amended.status_code == 201, amended.text
    assert withdrawn.status_code == 409 and withdrawn.json()["error"] == "entry_not_current", withdrawn.text
    with live.committing_session(settings) as session:
        versions = {e.id: e for e in session.scalars(
            select(TimelineEntry).where(TimelineEntry.record_id == uuid.UUID(sent["record_id"])))}
    assert versions[uuid.UUID(sent["id"])].status == EntryStatus.final
    current = versions[uuid.UUID(amended.json()["id"])]
    assert current.is_head and current.status == EntryStatus.final


def test_withdrawing_a_consent_while_a_new_version_is_recorded_refuses_instead_of_withdrawing_the_old_one(
        settings, monkeypatch):
    team = interleave.team(settings)
    # The withdrawal has checked the consent and the password; meanwhile a colleague records a new version.
    hold = interleave.hold_first_call(monkeypatch, settings, consent_service.reauth, "reauthenticate")
    withdrawn, recorded = interleave.run(
        settings,
        lambda c: c.post(f"/api/v1/patients/{team.patient_id}/consents/{team.consent_id}/withdraw",
                         headers=team.physician,
                         json={"reason": "本人の申し出", "password": factories.PASSWORD}),
        lambda c: c.post(f"/api/v1/patients/{team.patient_id}/consents", headers=team.colleague,
                         json={"given_by": "patient", "method": "written", "scope": "blanket",
                               "obtained_on": today_jst().isoformat(), "password": factories.PASSWORD}),
        hold)
    assert hold.outcome == interleave.ANSWERED
    assert recorded.status_code == 201, recorded.text
    assert withdrawn.status_code == 409, withdrawn.text
    with live.committing_session(settings) as session:
        consents = {c.id: c for c in session.scalars(
            select(Consent).where(Consent.patient_id == team.patient_id))}
    assert consents[team.consent_id].withdrawn_at is None
    new = consents[uuid.UUID(recorded.json()["id"])]
    assert new.superseded_at is None and new.withdrawn_at is None
