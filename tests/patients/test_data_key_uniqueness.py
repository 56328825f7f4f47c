"""A patient has at most one active data key: the database refuses a second (migration 0012)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from renkei.db import migrations
from renkei.patients import keys
from renkei.patients.models import PatientKey
from tests import factories
from tests.crypto import live


def _active_keys(db, patient_id) -> int:
    return db.scalar(select(func.count()).select_from(PatientKey)
                     .where(PatientKey.patient_id == patient_id, PatientKey.active.is_(True)))


def test_a_second_active_data_key_for_a_patient_is_refused_by_the_database(db, keyring, world):
    with pytest.raises(IntegrityError, match="(?i)unique|duplicate"), db.begin_nested():
        keys.create_data_key(db, keyring, world.patient_id)
        db.flush()
    assert _active_keys(db, world.patient_id) == 1


def test_a_patient_keeps_retired_keys_beside_its_one_active_key(db, keyring, world):
    db.execute(update(PatientKey).where(PatientKey.patient_id == world.patient_id).values(active=False))
    new_key_id, _ = keys.create_data_key(db, keyring, world.patient_id)
    db.flush()
    assert _active_keys(db, world.patient_id) == 1
    assert db.scalar(select(func.count()).select_from(PatientKey)
                     .where(PatientKey.patient_id == world.patient_id)) == 2
    assert keys.active_key(db, keyring, world.patient_id)[0] == new_key_id


def test_the_upgrade_stops_on_a_database_holding_two_active_keys_for_a_patient(tmp_path):
    with live.scratch_database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url)
        migrations.upgrade(settings.sqlalchemy_url, revision="0011")
        keyring = live.open_keyring(settings)
        with live.committing_session(settings) as session:
            registrar = factories.make_user(session, factories.make_org(session))
            patient_id = factories.make_patient(session, keyring, registrar)
            keys.create_data_key(session, keyring, patient_id)
        refused = r"patient_key: 1 patient\(s\) have more than one active data key"
        with pytest.raises(RuntimeError, match=refused):
            migrations.upgrade(settings.sqlalchemy_url)
        with live.committing_session(settings) as session:
            assert _active_keys(session, patient_id) == 2  # nothing chosen for the operator
            keep = keys.active_key(session, keyring, patient_id)[0]
            session.execute(update(PatientKey).where(PatientKey.patient_id == patient_id,
                                                     PatientKey.key_id != keep).values(active=False))
        migrations.upgrade(settings.sqlalchemy_url)
        with live.committing_session(settings) as session:
            assert _active_keys(session, patient_id) == 1
