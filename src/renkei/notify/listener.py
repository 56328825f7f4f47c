"""PostgreSQL LISTEN: hear that another process appended events, so this process's sockets get them too.

The notification only wakes the hub; the hub reads the outbox itself. After a lost connection the
listener connects and listens again, then wakes the hub, which catches up on whatever was appended
meanwhile: a notification missed while disconnected costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

log = logging.getLogger("renkei.notify")

APPLICATION_NAME = "renkei-listener"


async def listen(url: str, *, channel: str, on_wake: Callable[[], None], check_every: float) -> None:
    """Listen until cancelled, reconnecting with backoff; wake on every notification and every (re)connect."""
    backoff = 0.2
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, application_name=APPLICATION_NAME,
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )
        except (OSError, psycopg.Error) as exc:
            log.warning("event listener cannot connect (%s); retrying in %.1f s", type(exc).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        try:
            async with conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                backoff = 0.2
                on_wake()
                while True:
                    async for _ in conn.notifies(timeout=check_every):
                        on_wake()
                    # Quiet for a while: prove the connection is still there rather than wait on a dead one.
                    await conn.execute("SELECT 1")
        except (OSError, psycopg.Error) as exc:
            log.warning("event listener lost its connection (%s); listening again", type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
