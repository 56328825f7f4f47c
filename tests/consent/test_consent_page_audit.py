"""A consent change refused through the form leaves the same trail as through the JSON API: the denial and
the reads of the page shown again, never an "allowed" row for a change that did not happen."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.consent.models import Consent
from renkei.db.types import today_jst
from tests.factories import auth_headers


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def _rows(db, request_id: str) -> set[tuple[str, str | None, str, str]]:
    db.expire_all()
    return {(r.action, r.event, r.decision, r.reason)
            for r in db.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))}


def test_a_withdrawal_refused_for_a_wrong_password_leaves_no_allowed_withdrawal_on_record(
    client, db, world, doctor,
):
    r = client.post(f"/patients/{world.patient_id}/consents/{world.consent_id}/withdraw", headers=doctor,
                    data={"reason": "本人の申し出", "password": "wrong-password-xxxx"})
    assert r.status_code == 403 and "パスワードが正しくありません" in r.text
    assert db.get(Consent, world.consent_id).withdrawn_at is None
    rows = _rows(db, r.headers["x-request-id"])
    assert ("manage_consent", None, "deny", "reauth_failed") in rows
    assert not [row for row in rows if row[0] == "manage_consent" and row[2] == "allow"], rows
    # The page shown again disclosed the registration header and the consent history: those reads stay.
    assert {row[0] for row in rows if row[2] == "allow"} == {"read_registration", "read_consent"}
    log = client.get(f"/api/v1/patients/{world.patient_id}/access-log",
                     headers=doctor).json()
    assert [(e["event"], e["decision"]) for e in log if e["action"] == "manage_consent"] == [(None, "deny")]


def test_a_recording_refused_through_the_form_leaves_no_allowed_record_row(client, db, world, doctor):
    form = {"given_by": "patient", "method": "written", "scope": "blanket",
            "obtained_on": today_jst().isoformat(), "password": "wrong-password-xxxx"}
    r = client.post(f"/patients/{world.patient_id}/consents", headers=doctor, data=form)
    assert r.status_code == 403
    rows = _rows(db, r.headers["x-request-id"])
    assert [row for row in rows if row[0] == "manage_consent"] == [
        ("manage_consent", None, "deny", "reauth_failed")]
