"""Two consent changes of one patient sent at the same moment, each with its own Idempotency-Key.

Real, committed transactions on a database of the test's own. On PostgreSQL both requests have claimed
their idempotency keys (whose foreign key holds a KEY SHARE lock on the patient row) before either takes the
patient's lock, as two tablets submitting together would; SQLite runs a process's transactions one after
another (BEGIN IMMEDIATE), so there they only follow each other.
"""

from __future__ import annotations

import threading
import uuid

import httpx
from sqlalchemy import select

from renkei.consent.models import Consent
from renkei.db.types import today_jst
from renkei.patients import locks
from renkei.patients import service as patient_service
from tests import factories, interleave
from tests.crypto import live

BODY = {"given_by": "patient", "method": "written", "scope": "blanket",
        "obtained_on": today_jst().isoformat(), "password": factories.PASSWORD}


def _two_physicians_with_patient(settings) -> tuple[uuid.UUID, list[dict[str, str]]]:
    """Two physicians of one team (each signed in on their own tablet)."""
    keyring = live.open_keyring(settings)
    with live.committing_session(settings) as session:
        org = factories.make_org(session, name="同時同意クリニック", kind="home_care_clinic")
        doctor, colleague = (factories.make_user(session, org, profession="physician",
                                                 email=f"consent-race-{uuid.uuid4().hex[:12]}@test.example")
                             for _ in range(2))
        patient_id = factories.make_patient(session, keyring, doctor)
        membership = patient_service.MembershipIn(user_id=colleague.id, team_role="physician",
                                                  start_date=today_jst())
        patient_service.add_member(session, actor=factories.actor_of(doctor), patient_id=patient_id,
                                   data=membership)
        factories.grant_consent(session, keyring, patient_id, doctor)
        return patient_id, [factories.auth_headers(session, settings, keyring, user)
                            for user in (doctor, colleague)]


def _meet_before_locking(monkeypatch) -> threading.Barrier:
    """Both requests reach the patient's lock (keys claimed, nothing else written) before either takes it."""
    together = threading.Barrier(2, timeout=10)
    lock = locks.lock_patient

    def met(session, patient_id):
        together.wait()
        return lock(session, patient_id)

    monkeypatch.setattr(locks, "lock_patient", met)
    return together


def _record_two(settings, patient_id: uuid.UUID, tablets: list[dict[str, str]]) -> list[httpx.Response]:
    url = f"/api/v1/patients/{patient_id}/consents"
    return interleave.together(settings, *(
        lambda c, n=n, headers=headers: c.post(
            url, headers={**headers, "Idempotency-Key": f"consent-tablet-{n}"}, json=BODY)
        for n, headers in enumerate(tablets)))


def test_two_consents_recorded_together_are_both_stored_one_after_the_other(tmp_path, monkeypatch):
    with live.scratch_database(tmp_path) as url:
        settings = live.migrate(live.settings_for(tmp_path, url))
        patient_id, tablets = _two_physicians_with_patient(settings)
        together = _meet_before_locking(monkeypatch) if live.BACKEND == "postgres" else None
        responses = _record_two(settings, patient_id, tablets)
        with live.committing_session(settings) as session:
            versions = session.scalars(select(Consent.version).where(Consent.patient_id == patient_id)
                                       .order_by(Consent.version)).all()
    # No deadlock: the second waits for the first to commit, then supersedes it.
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert versions == [1, 2, 3]
    assert together is None or not together.broken
