"""Column types read on hot paths: interned UUIDs and UTC datetimes convert exactly as the plain types do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, MetaData, Table, Uuid, insert, select, type_coerce
from sqlalchemy import text as text_sql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from renkei.db import types
from renkei.db.types import INTERNED_UUID, InternedUuid, UTCDateTime, read_columns
from renkei.timeline import views


def _table() -> Table:
    return Table("t_types", MetaData(), Column("id", Uuid(), primary_key=True), Column("other", Uuid()),
                 Column("at", UTCDateTime()), Column("plain", DateTime()))


def test_interned_uuid_reads_the_same_values_as_uuid_and_shares_repeated_ones(connection):
    table = _table()
    table.create(connection)
    shared = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(5)]
    rows = [{"id": i, "other": shared if n % 2 else None} for n, i in enumerate(ids)]
    connection.execute(insert(table), rows)
    plain = connection.execute(select(table.c.id, table.c.other).order_by(table.c.id)).all()
    fast = connection.execute(select(*read_columns(table)).order_by(table.c.id)).all()
    assert [tuple(r) for r in fast] == [(r.id, r.other) + (None, None) for r in plain]
    assert all(isinstance(r.id, uuid.UUID) for r in fast)
    assert {r.other for r in fast} == {shared, None}
    if connection.dialect.name == "sqlite":
        # Character column: one UUID object per distinct value.
        assert len({id(r.other) for r in fast if r.other is not None}) == 1


def test_interned_uuid_map_is_bounded(connection):
    table = _table()
    table.create(connection)
    ids = [uuid.uuid4() for _ in range(InternedUuid._LIMIT + 50)]
    connection.execute(insert(table), [{"id": i} for i in ids])
    read = connection.scalars(select(type_coerce(table.c.id, INTERNED_UUID))).all()
    assert sorted(read) == sorted(ids)


def test_utc_datetime_reads_aware_utc_and_none(connection):
    table = _table()
    table.create(connection)
    at = datetime(2026, 12, 3, 1, 2, 3, 456789, tzinfo=UTC)
    connection.execute(insert(table), [{"id": uuid.uuid4(), "at": at}, {"id": uuid.uuid4(), "at": None}])
    read = connection.scalars(select(table.c.at).order_by(table.c.at.is_(None))).all()
    assert read == [at, None]
    assert read[0].tzinfo is UTC


def test_plain_rows_keep_every_attribute_of_a_core_row(connection):
    table = _table()
    table.create(connection)
    connection.execute(insert(table), [{"id": uuid.uuid4(), "other": uuid.uuid4()}])
    rows = connection.execute(select(table)).all()
    plain = views.plain_rows(rows)
    assert [p._asdict() for p in plain] == [dict(r._mapping) for r in rows]
    assert views.plain_rows(plain) is plain  # already plain: as it is
    assert types.read_columns(table)[2] is table.c.at  # only UUID columns change


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=5))])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES))
def test_utc_datetime_reads_back_every_instant_it_wrote_as_aware_utc(connection, at):
    table = _table()
    table.create(connection, checkfirst=True)
    row_id = uuid.uuid4()
    connection.execute(insert(table), [{"id": row_id, "at": at}])
    read = connection.scalars(select(table.c.at).where(table.c.id == row_id)).one()
    assert read == at and read.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-12-03 01:02:03.456789", "2026-12-03 01:02:03", "2026-12-03T01:02:03",
                                  "2026-12-03 01:02", "2026-12-03"])
def test_utc_datetime_reads_sqlite_text_in_any_form_as_sqlalchemy_parses_it(connection, text):
    if connection.dialect.name != "sqlite":
        pytest.skip("PostgreSQL stores timestamps, not text")
    table = _table()
    table.create(connection)
    connection.execute(text_sql("INSERT INTO t_types (id, at, plain) VALUES (:id, :at, :at)"),
                       {"id": uuid.uuid4().hex, "at": text})
    row = connection.execute(select(table.c.at, table.c.plain)).one()
    assert row.at == row.plain.replace(tzinfo=UTC) and row.at.tzinfo is UTC


@settings(max_examples=200)
@given(value=st.uuids())
def test_uuids_read_from_hex_text_are_the_uuids_the_constructor_makes(value):
    made = types._from_hex(value.hex)
    assert made == value and str(made) == str(value) and hash(made) == hash(value)
    assert made.is_safe == uuid.UUID(value.hex).is_safe


@pytest.mark.parametrize("text", ["g" * 32, "-" * 32, " " * 32])
def test_uuid_text_that_is_not_hex_is_refused_as_the_constructor_refuses_it(text):
    with pytest.raises(ValueError):
        uuid.UUID(text)
    with pytest.raises(ValueError):
        types._from_hex(text)


def test_a_uuid_with_a_sign_is_refused_as_the_constructor_refuses_it():
    text = "-" + "a" * 31  # int() would take the sign
    with pytest.raises(ValueError):
        uuid.UUID(text)
    with pytest.raises(ValueError):
        types._from_hex(text)


_SQLITE = sqlite_dialect.dialect()
_FAST = UTCDateTime().dialect_impl(_SQLITE).result_processor(_SQLITE, None)
_PLAIN = DateTime().dialect_impl(_SQLITE).result_processor(_SQLITE, None)


def _outcome(read, text):
    """What a reader makes of the text; the plain parser's value as UTCDateTime always read it (made UTC)."""
    try:
        value = read(text)
    except ValueError:
        return "refused"
    return value if value is None or read is _FAST else value.replace(tzinfo=UTC)


@settings(max_examples=400)
@given(written=st.sampled_from(["2026-12-03 21:17:10.123456", "2026-12-03 21:17:10"]),
       edits=st.lists(st.tuples(st.integers(0, 25), st.sampled_from(list("0123456789 +-:.,TZ_a\t"))),
                      max_size=3))
def test_sqlite_datetime_text_reads_and_is_refused_exactly_as_sqlalchemys_parser_does(written, edits):
    text = list(written)
    for at, char in edits:
        text[at % len(text)] = char
    text = "".join(text)
    assert _outcome(_FAST, text) == _outcome(_PLAIN, text)


@pytest.mark.parametrize("text", ["2026-12-03 21:17:10 ", "2026-12-03 21:17:10.", "2026-12-03901,"])
def test_malformed_sqlite_datetime_text_is_not_read_leniently(text):
    assert _outcome(_FAST, text) == _outcome(_PLAIN, text)
