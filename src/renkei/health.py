"""Liveness and readiness probes (no authentication, no data)."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from renkei.db import migrations

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations at head")
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception:  # noqa: BLE001 - any failure means not ready; details stay out of the response
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    heads = set(ScriptDirectory.from_config(migrations.alembic_config()).get_heads())
    if current != heads:
        return JSONResponse({"status": "unavailable", "database": "migrations_pending"}, status_code=503)
    return JSONResponse({"status": "ok"})
