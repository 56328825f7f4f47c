"""Liveness and readiness probes (no authentication, no data)."""

from __future__ import annotations

from functools import lru_cache

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from renkei.db import migrations

router = APIRouter(tags=["health"])


class _NotMigrated(Exception):
    pass


@lru_cache(maxsize=1)
def _expected_heads() -> frozenset[str]:
    # The migration scripts cannot change under a running process; parse them once.
    return frozenset(ScriptDirectory.from_config(migrations.alembic_config()).get_heads())


def _applied_heads(engine: Engine) -> frozenset[str]:
    """Read alembic_version over a raw DBAPI connection.

    The SQLite engine opens every SQLAlchemy transaction with BEGIN IMMEDIATE (the write lock); a probe
    polled every few seconds must neither take that lock nor queue behind a long write for it.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        try:
            cursor.execute("SELECT version_num FROM alembic_version")
            return frozenset(row[0] for row in cursor.fetchall())
        except Exception as exc:  # noqa: BLE001 - no version table yet: the database was never migrated
            raise _NotMigrated from exc
    finally:
        raw.close()


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations at head")
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    try:
        current = _applied_heads(request.app.state.engine)
    except _NotMigrated:
        current = frozenset()
    except Exception:  # noqa: BLE001 - any failure means not ready; details stay out of the response
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if current != _expected_heads():
        return JSONResponse({"status": "unavailable", "database": "migrations_pending"}, status_code=503)
    return JSONResponse({"status": "ok"})
