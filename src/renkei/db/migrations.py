"""Run Alembic programmatically (the CLI, the tests and readiness all use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

ROOT = Path(__file__).resolve().parents[3]


def _script_location() -> Path:
    # Source checkout: <repo>/alembic. Installed wheel is not a supported layout for migrations.
    return ROOT / "alembic"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_script_location()))
    cfg.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"
    )
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str | None = None, *, connection: Connection | None = None, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url, connection), revision)
