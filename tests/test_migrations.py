"""Alembic owns the schema: the migrated database matches the models, and migrations run down and up."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)

from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.models import metadata
from tests.crypto import live


def _drift(connection: Connection, target: MetaData) -> list[tuple]:
    """Alembic autogenerate's differences, flattened to (operation, table, detail) for readable failures."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    out = []
    for diff in compare_metadata(context, target):
        for op in diff if isinstance(diff, list) else [diff]:
            kind = op[0]
            if kind in ("add_column", "remove_column"):
                out.append((kind, op[2], op[3].name))
            elif kind in ("add_table", "remove_table"):
                out.append((kind, op[1].name, None))
            elif kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
                out.append((kind, op[1].table.name, op[1].name))
            elif kind in ("add_fk", "remove_fk"):
                out.append((kind, op[1].parent.name, tuple(c.name for c in op[1].columns)))
            elif kind.startswith("modify_"):
                out.append((kind, op[2], op[3]))
            else:
                out.append((kind, None, repr(op[1:])))
    return sorted(out, key=repr)


def _copy() -> MetaData:
    copy = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(copy)
    return copy


def test_migrated_database_matches_the_models_exactly(connection):
    assert _drift(connection, metadata) == []


def test_every_model_table_is_created_by_a_migration(connection):
    assert set(metadata.tables) <= set(inspect(connection).get_table_names())


def _add_column(md: MetaData) -> None:
    md.tables["patient"].append_column(Column("nickname", String(50), nullable=True))


def _loosen_nullability(md: MetaData) -> None:
    md.tables["patient_key"].c.kek_id.nullable = True


def _change_type(md: MetaData) -> None:
    md.tables["organisation"].c.name.type = Text()


def _add_index(md: MetaData) -> None:
    Index("ix_patient_created_at", md.tables["patient"].c.created_at)


def _add_unique(md: MetaData) -> None:
    md.tables["care_team_membership"].append_constraint(
        UniqueConstraint("patient_id", "user_id", "team_role", name="uq_membership_role"))


def _add_foreign_key(md: MetaData) -> None:
    md.tables["patient"].append_constraint(
        ForeignKeyConstraint(["created_by"], ["organisation.id"], name="fk_patient_created_by_org"))


def _add_table(md: MetaData) -> None:
    Table("unmigrated_thing", md, Column("id", Integer, primary_key=True))


@pytest.mark.parametrize(("mutate", "expected"), [
    (_add_column, ("add_column", "patient", "nickname")),
    (_loosen_nullability, ("modify_nullable", "patient_key", "kek_id")),
    (_change_type, ("modify_type", "organisation", "name")),
    (_add_index, ("add_index", "patient", "ix_patient_created_at")),
    (_add_unique, ("add_constraint", "care_team_membership", "uq_membership_role")),
    (_add_foreign_key, ("add_fk", "patient", ("created_by",))),
    (_add_table, ("add_table", "unmigrated_thing", None)),
], ids=["column", "nullability", "type", "index", "unique", "foreign-key", "table"])
def test_drift_check_fails_when_a_model_changes_without_a_migration(
    connection, mutate: Callable[[MetaData], None], expected
):
    md = _copy()
    mutate(md)
    assert expected in _drift(connection, md)


def test_migrations_run_down_to_nothing_and_back_up_to_the_same_schema(tmp_path):
    with live.scratch_database(tmp_path) as url:
        settings = live.settings_for(tmp_path, url)
        migrations.upgrade(settings.sqlalchemy_url)
        command.downgrade(migrations.alembic_config(settings.sqlalchemy_url), "base")
        engine = make_engine(settings.sqlalchemy_url)
        try:
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            migrations.upgrade(settings.sqlalchemy_url)
            with engine.connect() as conn:
                assert _drift(conn, metadata) == []
                heads = set(ScriptDirectory.from_config(migrations.alembic_config()).get_heads())
                assert set(MigrationContext.configure(conn).get_current_heads()) == heads
        finally:
            engine.dispose()


def test_migration_files_follow_the_naming_scheme_and_form_one_history():
    script = ScriptDirectory.from_config(migrations.alembic_config())
    revisions = list(script.walk_revisions())
    assert revisions, "no migrations found"
    for rev in revisions:
        name = Path(rev.path).name
        assert re.fullmatch(rf"\d{{8}}_\d{{4}}_{re.escape(rev.revision)}_[a-z0-9_]+\.py", name), name
    bases = script.get_bases()
    assert len(bases) == 1, f"every migration must descend from one base, found {bases}"
