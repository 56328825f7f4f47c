"""Concurrent authenticated writes on SQLite must not deadlock the event loop.

Runs against its own database file because the shared test connection serialises everything and would
hide the problem: actor resolution used to run blocking database work on the event loop, so a request
waiting for SQLite's write lock froze the loop that the lock holder needed to commit.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from renkei.app import create_app
from renkei.crypto.keyring import Keyring
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from tests.conftest import BACKEND
from tests.factories import auth_headers, make_org, make_user

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite write-lock behaviour")


def test_parallel_authenticated_writes_all_succeed_quickly(settings, tmp_path):
    own = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'concurrency.db'}"})
    migrations.upgrade(own.sqlalchemy_url)
    engine = make_engine(own.sqlalchemy_url)
    keyring = Keyring.open(own.key_file)
    try:
        with make_sessionmaker(engine)() as db:
            user = make_user(db, make_org(db))
            headers = [auth_headers(db, own, keyring, user) for _ in range(6)]
            db.commit()
        app = create_app(own, engine=engine)

        async def sign_out_everywhere() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                calls = (http.post("/api/v1/auth/logout", headers=h) for h in headers)
                responses = await asyncio.gather(*calls)
            return [r.status_code for r in responses]

        start = time.perf_counter()
        statuses = asyncio.run(sign_out_everywhere())
        elapsed = time.perf_counter() - start
    finally:
        engine.dispose()
    assert statuses == [204] * len(headers)
    assert elapsed < 10, elapsed
