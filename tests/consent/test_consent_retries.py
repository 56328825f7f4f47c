"""Consent POSTs are retry-safe with an Idempotency-Key: a tablet that resends after a dropped answer gets
the first answer back, and nothing is recorded twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from renkei.consent.models import Consent, ConsentDocument
from renkei.db.types import today_jst
from renkei.idempotency.models import IdempotencyKey
from tests.access.support import PDF, PNG
from tests.factories import PASSWORD, auth_headers

BODY = {"given_by": "patient", "method": "written", "scope": "blanket",
        "obtained_on": today_jst().isoformat(), "password": PASSWORD}


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def _versions(db, world) -> int:
    return db.scalar(select(func.count()).select_from(Consent).where(Consent.patient_id == world.patient_id))


def test_a_consent_sent_twice_with_one_key_is_recorded_once(client, db, world, doctor):
    path = f"/api/v1/patients/{world.patient_id}/consents"
    headers = doctor | {"Idempotency-Key": "consent-tablet-0001"}
    first = client.post(path, headers=headers, json=BODY)
    again = client.post(path, headers=headers, json=BODY)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert _versions(db, world) == 2
    other = client.post(path, headers=headers, json=BODY | {"scope": "individual",
                                                             "organisation_ids": [str(world.nursing.id)]})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert _versions(db, world) == 2


def test_the_stored_fingerprint_leaves_the_password_out(client, db, world, doctor):
    path = f"/api/v1/patients/{world.patient_id}/consents"
    headers = doctor | {"Idempotency-Key": "consent-tablet-0002"}
    assert client.post(path, headers=headers, json=BODY).status_code == 201
    # The same submission retried with the password typed again differently is still the same submission.
    again = client.post(path, headers=headers, json=BODY | {"password": "something-else-entirely"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    row = db.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "consent-tablet-0002")).one()
    assert PASSWORD not in row.fingerprint and _versions(db, world) == 2


def test_a_withdrawal_retried_with_its_key_replays_instead_of_conflicting(client, db, world, doctor):
    path = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/withdraw"
    body = {"reason": "本人の申し出", "password": PASSWORD}
    headers = doctor | {"Idempotency-Key": "withdraw-0001"}
    first = client.post(path, headers=headers, json=body)
    again = client.post(path, headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert again.json()["withdrawn_at"] == first.json()["withdrawn_at"]
    assert client.post(path, headers=doctor, json=body).status_code == 409  # without the key: a new request


def test_a_scan_retried_with_its_key_is_stored_once(client, db, world, doctor):
    path = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments"
    headers = doctor | {"Idempotency-Key": "scan-0001"}
    first = client.post(path, headers=headers, files={"file": ("scan.pdf", PDF, "application/pdf")})
    again = client.post(path, headers=headers, files={"file": ("scan.pdf", PDF, "application/pdf")})
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    different = client.post(path, headers=headers, files={"file": ("sig.png", PNG, "image/png")})
    assert different.status_code == 422
    count = db.scalar(select(func.count()).select_from(ConsentDocument)
                      .where(ConsentDocument.consent_id == world.consent_id))
    assert count == 1


def test_an_outsiders_key_reveals_nothing(client, db, settings, keyring, world):
    outsider = auth_headers(db, settings, keyring, world.outsider)
    for key in ("x" * 201, "fine-key"):
        r = client.post(f"/api/v1/patients/{world.patient_id}/consents", json=BODY,
                        headers=outsider | {"Idempotency-Key": key})
        assert r.status_code in (404, 422)
        if r.status_code == 422:  # the header's own length limit, the same for every patient
            assert r.json()["fields"][0]["path"].startswith("/header")
    assert db.scalars(select(IdempotencyKey).where(IdempotencyKey.user_id == world.outsider.id)).all() == []
