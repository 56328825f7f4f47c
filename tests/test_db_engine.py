"""The PostgreSQL connection pool: a connection the server has ended is replaced before a request uses it,
and a live one is handed out without a round trip."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from psycopg.pq import Format
from sqlalchemy import event, text

from renkei.db.engine import BINARY_RESULTS, make_engine
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's connection pool")


@pytest.fixture
def pool(settings):
    engine = make_engine(settings.sqlalchemy_url)
    yield engine
    engine.dispose()


def _gone(engine, pid: int) -> None:
    for _ in range(200):
        # (A new transaction each time: pg_stat_activity is a snapshot taken once per transaction.)
        with engine.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar_one():
                return
        time.sleep(0.05)
    raise AssertionError("the server did not end the connection")


@pytest.mark.parametrize("ended_by", ["another session (pg_terminate_backend)", "its idle_session_timeout"])
def test_a_pooled_connection_the_server_ended_is_replaced_before_use(pool, engine, ended_by):
    with pool.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        if "idle" in ended_by:
            conn.execute(text("SET idle_session_timeout = '200ms'"))
            conn.commit()
    if "terminate" in ended_by:
        with engine.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    _gone(engine, pid)
    with pool.connect() as conn:
        assert conn.execute(text("SELECT 41 + 1")).scalar_one() == 42
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid


def test_a_live_pooled_connection_is_handed_out_without_a_round_trip(pool, engine):
    with pool.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with pool.connect() as conn:
        # The server saw nothing between the pool's reset when the connection came back (ROLLBACK) and this
        # checkout: a ping (`pool_pre_ping` sends ";") would be its last statement.
        with engine.connect() as other:
            last = other.execute(text("SELECT query FROM pg_stat_activity WHERE pid = :pid"),
                                 {"pid": pid}).scalar_one()
        assert last == "ROLLBACK"
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid


_VALUES = ("SELECT '\\x00ff'::bytea, 'ＡＢ 連携'::text, TIMESTAMP '2026-12-03 21:17:10.123456',"
           " 12345678901::bigint, '8f3c5e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6'::uuid, true")


def test_a_statement_that_asks_for_binary_results_gets_them_and_reads_the_same_values(pool):
    formats: list[int] = []

    @event.listens_for(pool, "after_cursor_execute")
    def seen(_conn, cursor, *_args):
        formats.append(cursor.pgresult.fformat(0))

    with pool.connect() as conn:
        as_text = conn.execute(text(_VALUES)).one()
        as_binary = conn.execute(text(_VALUES).execution_options(**{BINARY_RESULTS: True})).one()
    assert formats == [Format.TEXT, Format.BINARY]
    assert type(as_binary[0]) is bytes
    assert tuple(as_binary) == tuple(as_text) == (
        b"\x00\xff", "ＡＢ 連携", datetime(2026, 12, 3, 21, 17, 10, 123456), 12345678901,
        uuid.UUID("8f3c5e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"), True)


def test_the_timeline_feed_asks_for_binary_results():
    from renkei.timeline import queries

    assert queries._FEED.get_execution_options().get(BINARY_RESULTS) is True


def test_pooled_connections_use_tcp_keepalives_so_a_vanished_peer_is_found(pool):
    with pool.connect() as conn:
        settings = conn.connection.driver_connection.info.get_parameters()
    assert settings["keepalives"] == "1" and int(settings["keepalives_idle"]) <= 60
