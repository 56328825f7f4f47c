"""Fixtures for real-server tests: a migrated database of their own and a uvicorn process per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.config import Settings
from tests.notify import live


@pytest.fixture(scope="module")
def live_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a committed deployment (SQLite file, or a schema in PostgreSQL's `<run database>_ws`)."""
    tmp = tmp_path_factory.mktemp("live")
    with live.database(tmp) as url:
        yield live.settings_for(tmp, url)


@pytest.fixture(scope="module")
def server(live_settings: Settings) -> Iterator[live.Server]:
    """One uvicorn (ws="websockets"); its outbox poll and session sweep (60 s each) are slowed down, so
    whatever arrives faster was pushed by an event."""
    srv = live.Server(live_settings, Path(live_settings.var_dir), notify_poll_seconds=60,
                      ws_heartbeat_seconds=60, ws_max_connections_per_user=2).start()
    yield srv
    srv.stop()


@pytest.fixture
def deployment(live_settings: Settings) -> live.Deployment:
    """A new world in the shared deployment: its own organisations, staff and patient."""
    return live.seed(live_settings)
