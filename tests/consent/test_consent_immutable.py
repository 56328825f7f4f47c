"""Consents are never edited or deleted: no route offers it, and the database refuses it (both backends);
only superseding and withdrawal set their columns once. A scan belongs to the version that was signed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from renkei.consent.models import Consent, ConsentDocument, ConsentOrganisation
from renkei.db.types import today_jst, utcnow
from tests.access.route_table import ROUTES
from tests.access.support import PDF
from tests.factories import PASSWORD, auth_headers, grant_consent


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def _refused(db, sql: str, **params: object) -> None:
    with pytest.raises(DBAPIError, match="never (edited|deleted)"), db.begin_nested():
        db.execute(text(sql), params)


def test_no_route_edits_or_deletes_a_consent():
    consent_routes = [r for r in ROUTES if "/consents" in r.path]
    assert consent_routes
    assert {r.method for r in consent_routes} <= {"GET", "POST"}
    posts = {r.path.rsplit("/consents", 1)[1] for r in consent_routes if r.method == "POST"}
    # Record a new version, withdraw one, attach the signed paper: nothing that rewrites a version.
    assert posts == {"", "/{consent_id}/withdraw", "/{consent_id}/attachments"}


def test_the_database_refuses_to_edit_a_consent(db, world):
    cid = world.consent_id.hex if db.get_bind().dialect.name == "sqlite" else str(world.consent_id)
    nurse = world.nurse.id.hex if len(cid) == 32 else str(world.nurse.id)
    for column, value in (("excluded_categories", "acp"), ("scope", "individual"),
                          ("valid_until", today_jst()), ("recorded_by", nurse)):
        _refused(db, f"UPDATE consent SET {column} = :value WHERE id = :id", value=value, id=cid)
    assert db.get(Consent, world.consent_id).excluded_categories == ""


def test_the_database_refuses_to_delete_a_consent_or_its_parts(db, keyring, world, client, doctor):
    scan = client.post(f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments",
                       headers=doctor, files={"file": ("consent.pdf", PDF, "application/pdf")})
    assert scan.status_code == 201, scan.text
    narrowed = grant_consent(db, keyring, world.patient_id, world.physician,
                             organisation_ids=[world.nursing.id])
    is_sqlite = db.get_bind().dialect.name == "sqlite"

    def key(value):
        return value.hex if is_sqlite else str(value)

    _refused(db, "DELETE FROM consent WHERE id = :id", id=key(world.consent_id))
    _refused(db, "DELETE FROM consent_organisation WHERE consent_id = :id", id=key(narrowed))
    _refused(db, "UPDATE consent_organisation SET organisation_id = :org WHERE consent_id = :id",
             org=key(world.clinic.id), id=key(narrowed))
    _refused(db, "DELETE FROM consent_document WHERE consent_id = :id", id=key(world.consent_id))
    _refused(db, "UPDATE consent_document SET size = 1 WHERE consent_id = :id", id=key(world.consent_id))
    db.expire_all()
    assert db.get(Consent, world.consent_id) is not None
    assert db.scalars(select(ConsentOrganisation).where(ConsentOrganisation.consent_id == narrowed)).all()
    assert db.scalars(select(ConsentDocument).where(ConsentDocument.consent_id == world.consent_id)).all()


def test_superseding_and_withdrawal_set_their_columns_once(db, world):
    consent = db.get(Consent, world.consent_id)
    consent.withdrawn_at, consent.withdrawn_on = utcnow(), today_jst()
    consent.withdrawn_by = world.physician.id
    db.flush()  # NULL -> value: the one change a consent row takes
    cid = world.consent_id.hex if db.get_bind().dialect.name == "sqlite" else str(world.consent_id)
    _refused(db, "UPDATE consent SET withdrawn_at = NULL, withdrawn_on = NULL, withdrawn_by = NULL "
                 "WHERE id = :id", id=cid)
    _refused(db, "UPDATE consent SET withdrawn_on = :day WHERE id = :id", day=today_jst() - timedelta(days=1),
             id=cid)


@pytest.mark.parametrize("ended", ["withdrawn", "superseded"])
def test_a_scan_cannot_be_filed_under_a_withdrawn_or_superseded_consent(
    client, db, keyring, world, doctor, ended,
):
    pid = world.patient_id
    if ended == "withdrawn":
        r = client.post(f"/api/v1/patients/{pid}/consents/{world.consent_id}/withdraw", headers=doctor,
                        json={"reason": "本人の申し出", "password": PASSWORD})
        assert r.status_code == 200, r.text
    else:
        grant_consent(db, keyring, pid, world.physician)
    r = client.post(f"/api/v1/patients/{pid}/consents/{world.consent_id}/attachments", headers=doctor,
                    files={"file": ("consent.pdf", PDF, "application/pdf")})
    assert r.status_code == 409
    [problem] = r.json()["fields"]
    assert problem["path"] == "/consent_id"
    assert "撤回済み・差し替え済みの同意" in problem["message_ja"] and "current consent" in problem["message_en"]
    filed = db.scalars(select(ConsentDocument).where(ConsentDocument.consent_id == world.consent_id)).all()
    assert filed == []
