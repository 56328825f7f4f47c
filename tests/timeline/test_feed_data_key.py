"""A page of the timeline carries its patient's active data key row (patients.keys.with_active_key): the key
is not looked up in a round trip of its own, and entries sealed with an earlier key still open."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select, text, update

from renkei.crypto import aead
from renkei.crypto.aead import DecryptionError
from renkei.patients import keys
from renkei.patients.models import PatientKey
from renkei.timeline.models import TimelineEntry
from tests.factories import make_patient
from tests.timeline.support import posted


@pytest.fixture
def statements(connection) -> Iterator[list[str]]:
    """The SQL the application runs on the test's connection from now on."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def _page(client, headers, patient_id) -> dict[str, dict]:
    r = client.get(f"/api/v1/patients/{patient_id}/timeline?limit=50", headers=headers)
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()["items"]}


def test_a_timeline_page_reads_its_patients_data_key_with_its_rows(client, world, as_user, statements):
    doctor = as_user(world.physician)
    sent = [posted(client, doctor, world.patient_id, sheet) for sheet in ("message", "physician-visit")]
    statements.clear()
    page = _page(client, as_user(world.nurse), world.patient_id)
    assert [page[e["id"]]["data"] for e in sent] == [e["data"] for e in sent]
    key_reads = [s for s in statements if "patient_key" in s]
    assert len(key_reads) == 1 and "timeline_entry" in key_reads[0], key_reads


def test_entries_sealed_with_a_retired_data_key_still_open_on_the_page(client, db, keyring, world, as_user,
                                                                       statements):
    doctor = as_user(world.physician)
    before = posted(client, doctor, world.patient_id, "message", {"text": "鍵の前"})
    db.execute(update(PatientKey).where(PatientKey.patient_id == world.patient_id).values(active=False))
    new_key_id, _ = keys.create_data_key(db, keyring, world.patient_id)
    db.flush()
    after = posted(client, doctor, world.patient_id, "message", {"text": "鍵の後"})
    sealed_with = {e.id: aead.key_id_of(e.payload_ct) for e in db.scalars(
        select(TimelineEntry).where(TimelineEntry.patient_id == world.patient_id))}
    assert len(set(sealed_with.values())) == 2 and new_key_id in sealed_with.values()
    statements.clear()
    page = _page(client, as_user(world.nurse), world.patient_id)
    assert page[before["id"]]["data"]["text"] == "鍵の前"
    assert page[after["id"]]["data"]["text"] == "鍵の後"
    # The retired key, which the page's rows do not carry, is looked up by its id.
    assert len([s for s in statements if "patient_key" in s and "timeline_entry" not in s]) == 1


def _all_ids(client, headers, patient_id, limit: int) -> list[str]:
    """Every entry of the timeline, page by page."""
    ids: list[str] = []
    url = f"/api/v1/patients/{patient_id}/timeline?limit={limit}"
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        ids += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        url = f"/api/v1/patients/{patient_id}/timeline?limit={limit}&cursor={cursor}" if cursor else ""
    return ids


def test_a_patient_with_several_active_keys_gets_each_entry_once(client, db, keyring, world, as_user):
    """The page joins one chosen key row, so it never gains rows: even on a database from before 0012, whose
    partial unique index now refuses a second active key (dropped here inside the test's transaction)."""
    db.execute(text("DROP INDEX ux_patient_key_one_active"))
    doctor, nurse = as_user(world.physician), as_user(world.nurse)
    sent = [posted(client, doctor, world.patient_id, "message", {"text": f"{i}"})["id"] for i in range(2)]
    for _ in range(2):
        keys.create_data_key(db, keyring, world.patient_id)
    db.flush()
    sent += [posted(client, doctor, world.patient_id, "message", {"text": f"{i}"})["id"] for i in range(2, 4)]
    assert db.scalar(select(func.count()).select_from(PatientKey).where(
        PatientKey.patient_id == world.patient_id, PatientKey.active.is_(True))) == 3
    for limit in (1, 2, 50):
        assert _all_ids(client, nurse, world.patient_id, limit) == list(reversed(sent))


def test_a_patient_with_no_active_key_still_gets_every_entry(client, db, world, as_user):
    doctor = as_user(world.physician)
    sent = [posted(client, doctor, world.patient_id, "message", {"text": f"{i}"})["id"] for i in range(3)]
    db.execute(update(PatientKey).where(PatientKey.patient_id == world.patient_id).values(active=False))
    db.flush()
    nurse = as_user(world.nurse)
    assert _all_ids(client, nurse, world.patient_id, 2) == list(reversed(sent))
    texts = [item["data"]["text"] for item in _page(client, nurse, world.patient_id).values()]
    assert texts == ["2", "1", "0"]


def test_a_carried_key_row_of_another_patient_opens_nothing_of_this_one(db, keyring, world):
    other = make_patient(db, keyring, world.physician, name="別人 次郎", name_kana="ベツジン ジロウ")
    theirs = db.scalars(select(PatientKey).where(PatientKey.patient_id == other)).one()
    db.execute(update(PatientKey).where(PatientKey.key_id == "none").values(active=False))  # nothing cached
    carried = namedtuple("Carried", "carried_key_id carried_key_patient carried_kek_id carried_key_wrapped")
    keys.carried_key(db, carried(theirs.key_id, other, theirs.kek_id, theirs.wrapped))
    # The ownership check sees the row's own patient, before any unwrapping.
    with pytest.raises(DecryptionError, match="data key not found for this patient"):
        keys.key_by_id(db, keyring, world.patient_id, theirs.key_id)
