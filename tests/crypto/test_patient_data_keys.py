"""Per-patient data keys: row binding, column binding, wrapped-key ownership and crypto-shredding."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update

from renkei.crypto import aead
from renkei.crypto.aead import DecryptionError
from renkei.crypto.keyring import Keyring
from renkei.patients import keys
from renkei.patients import service as patient_service
from renkei.patients.models import Patient, PatientKey
from tests.factories import make_patient

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | st.text(max_size=40)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


def _key_row(db, patient_id) -> PatientKey:
    return db.scalars(select(PatientKey).where(PatientKey.patient_id == patient_id)).one()


def _fresh(keyring: Keyring) -> Keyring:
    """Another process: same key file, empty data-key cache."""
    return Keyring.open(keyring.path)


def test_identity_is_readable_by_the_keyring_of_a_freshly_started_process(db, keyring, world):
    patient = db.get(Patient, world.patient_id)
    identity = patient_service.decrypt_identity(db, _fresh(keyring), patient)
    assert identity.name == "山田 花子"
    assert "山田".encode() not in patient.identity_ct


def test_identity_ciphertext_copied_to_another_patients_row_fails(db, keyring, world):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    source, target = db.get(Patient, world.patient_id), db.get(Patient, other_id)
    target.identity_ct = source.identity_ct
    db.flush()
    for ring in (keyring, _fresh(keyring)):
        with pytest.raises(DecryptionError):
            patient_service.decrypt_identity(db, ring, target)


def test_ciphertext_moved_between_rows_of_the_same_patient_fails(db, keyring, world):
    blob = keys.seal_json(db, keyring, world.patient_id, aad="timeline_entry.data_ct", binding="entry:1",
                          value={"note": "褥瘡あり"})
    assert keys.open_json(db, keyring, world.patient_id, blob, aad="timeline_entry.data_ct",
                          binding="entry:1") == {"note": "褥瘡あり"}
    with pytest.raises(DecryptionError):
        keys.open_json(db, keyring, world.patient_id, blob, aad="timeline_entry.data_ct", binding="entry:2")


def test_ciphertext_moved_to_another_column_fails(db, keyring, world):
    patient = db.get(Patient, world.patient_id)
    with pytest.raises(DecryptionError):
        keys.open_json(db, keyring, world.patient_id, patient.identity_ct, aad="timeline_entry.data_ct",
                       binding=f"patient:{world.patient_id}")


def test_ciphertext_of_one_patient_cannot_be_opened_as_another_patients(db, keyring, world):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    blob = keys.seal_bytes(db, keyring, world.patient_id, aad="attachment.data_ct", binding="att:1", data=b"photo")
    with pytest.raises(DecryptionError, match="data key not found"):
        keys.open_bytes(db, keyring, other_id, blob, aad="attachment.data_ct", binding="att:1")


@pytest.mark.parametrize("warm_cache", [False, True], ids=["cold-cache", "warm-cache"])
def test_wrapped_data_key_of_patient_a_cannot_be_unwrapped_for_patient_b(db, keyring, world, warm_cache):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    row_a = _key_row(db, world.patient_id)
    ring = _fresh(keyring)
    if warm_cache:
        ring.unwrap(row_a.kek_id, row_a.wrapped, owner=str(world.patient_id), key_id=row_a.key_id)
    with pytest.raises(DecryptionError):
        ring.unwrap(row_a.kek_id, row_a.wrapped, owner=str(other_id), key_id=row_a.key_id)


def test_wrapped_data_key_copied_into_another_patients_key_row_fails(db, keyring, world):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    row_a, row_b = _key_row(db, world.patient_id), _key_row(db, other_id)
    row_b.wrapped, row_b.kek_id = row_a.wrapped, row_a.kek_id
    db.flush()
    with pytest.raises(DecryptionError, match="unwrap failed"):
        patient_service.decrypt_identity(db, _fresh(keyring), db.get(Patient, other_id))


def test_crypto_shredded_patient_can_no_longer_be_decrypted(db, keyring, world):
    patient = db.get(Patient, world.patient_id)
    assert patient_service.decrypt_identity(db, keyring, patient).name == "山田 花子"  # data key now cached
    row = _key_row(db, world.patient_id)
    db.delete(row)
    db.flush()
    keyring.forget(row.key_id)
    assert aead.key_id_of(patient.identity_ct) == row.key_id
    for ring in (keyring, _fresh(keyring)):
        with pytest.raises(DecryptionError, match="data key not found"):
            patient_service.decrypt_identity(db, ring, patient)


def test_shredding_one_patient_leaves_the_others_readable(db, keyring, world):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    row = _key_row(db, world.patient_id)
    db.delete(row)
    db.flush()
    keyring.forget(row.key_id)
    assert patient_service.decrypt_identity(db, keyring, db.get(Patient, other_id)).name == "別人 次郎"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(value=_json, binding=st.text(max_size=80))
def test_patient_json_round_trips_for_any_value_and_binding(db, keyring, world, value, binding):
    blob = keys.seal_json(db, keyring, world.patient_id, aad="timeline_entry.data_ct", binding=binding, value=value)
    assert keys.open_json(db, keyring, world.patient_id, blob, aad="timeline_entry.data_ct",
                          binding=binding) == value


def test_moving_both_ciphertext_and_key_row_to_another_patient_still_fails(db, keyring, world):
    other_id = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    source = db.get(Patient, world.patient_id)
    patient_service.decrypt_identity(db, keyring, source)  # A's data key is now cached in this process
    # One active key per patient is enforced by the database, so the tamperer first retires B's own key.
    _key_row(db, other_id).active = False
    db.flush()
    row_a = _key_row(db, world.patient_id)
    row_a.patient_id = other_id
    target = db.get(Patient, other_id)
    target.identity_ct = source.identity_ct
    db.flush()
    for ring in (keyring, _fresh(keyring)):
        with pytest.raises(DecryptionError):
            patient_service.decrypt_identity(db, ring, target)


@pytest.mark.parametrize("value", [{"count": 2**70}, {"score": float("nan")}, [-(2**64) - 1, "大"]],
                         ids=["integer-beyond-64-bits", "nan", "negative-big-integer"])
def test_payload_values_a_fast_json_parser_would_refuse_or_round_read_back_exactly(db, keyring, world, value):
    blob = keys.seal_json(db, keyring, world.patient_id, aad="timeline_entry.payload_ct", binding="entry:1",
                          value=value)
    read = keys.open_json(db, keyring, world.patient_id, blob, aad="timeline_entry.payload_ct",
                          binding="entry:1")
    assert repr(read) == repr(value)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_json)
def test_payload_parsing_matches_the_json_module(value):
    import json

    payload = keys.dumps(value)
    assert keys.loads(payload) == json.loads(payload)


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200)
@given(value=_any_json)
def test_a_payload_embedded_as_it_is_reads_as_the_parsed_payload_would(value):
    # The timeline embeds most decrypted payloads in its response without parsing them: the response must
    # still be strict JSON (NaN and Infinity are not) of the value the parsed payload encodes to.
    import msgspec

    payload = keys.dumps(value)
    embedded = msgspec.json.encode({"data": keys.as_json(payload)})
    parsed = msgspec.json.encode({"data": keys.loads(payload)})
    assert msgspec.json.decode(embedded) == msgspec.json.decode(parsed)


@pytest.mark.parametrize("value", [{"a": float("inf")}, {"a": [-float("inf")]}, {"b": [1, float("nan")]}],
                         ids=["infinity", "minus-infinity", "nan"])
def test_a_payload_with_non_finite_numbers_is_parsed_not_embedded(value):
    import msgspec

    found = keys.as_json(keys.dumps(value))
    assert not isinstance(found, msgspec.Raw)
    msgspec.json.decode(msgspec.json.encode(found))  # strict JSON: non-finite numbers written as null


def test_a_payload_of_finite_values_is_embedded_as_written():
    import msgspec

    payload = keys.dumps({"メモ": "\"引用\" と \\ 記号", "n": 1e16, "改行": "a\nb", "大": 2**70})
    found = keys.as_json(payload)
    assert isinstance(found, msgspec.Raw) and bytes(found) == payload
    assert msgspec.json.decode(msgspec.json.encode({"data": found})) == {"data": keys.loads(payload)}


def test_a_value_sealed_in_a_transaction_opens_without_reading_the_key_row_again(db, keyring, world):
    statements: list[str] = []
    connection = db.connection()
    event.listen(connection, "before_cursor_execute", lambda *a: statements.append(a[2]))
    forget_key_rows = update(PatientKey).where(PatientKey.key_id == "none").values(active=False)
    db.execute(forget_key_rows)  # nothing read before this test is reused
    blob = keys.seal_json(db, keyring, world.patient_id, aad="t.c", binding="row-1", value={"a": 1})
    statements.clear()
    assert keys.open_json(db, keyring, world.patient_id, blob, aad="t.c", binding="row-1") == {"a": 1}
    assert statements == []
    # A write to the key table in the same transaction drops what was read: the row is read again.
    db.execute(forget_key_rows)
    statements.clear()
    assert keys.open_json(db, keyring, world.patient_id, blob, aad="t.c", binding="row-1") == {"a": 1}
    assert len([s for s in statements if "patient_key" in s]) == 1
