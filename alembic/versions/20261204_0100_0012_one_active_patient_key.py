"""at most one active data key per patient (a partial unique index on patient_key)

A patient's entries are sealed with "the" active key and a page of entries carries "the" active key row,
each found with `LIMIT 1`. Nothing makes a second active key today, but nothing refused one either: two
would let a seal and a page's carried key disagree. The database now refuses it.

A database that already holds such a patient is not changed: the upgrade stops and says how many patients
are affected (which key to keep is an operator's decision, never this migration's).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if context.is_offline_mode():
        # A generated script (`alembic upgrade --sql`) cannot look first; creating the index fails on
        # such a database with the unique violation naming patient_key instead.
        _create_index()
        return
    doubled = op.get_bind().scalar(sa.text(
        "SELECT count(*) FROM (SELECT patient_id FROM patient_key WHERE active "
        "GROUP BY patient_id HAVING count(*) > 1) AS doubled"))
    if doubled:
        raise RuntimeError(
            f"patient_key: {doubled} patient(s) have more than one active data key; mark all but one "
            "inactive (active = false) before upgrading")
    _create_index()


def _create_index() -> None:
    op.create_index("ux_patient_key_one_active", "patient_key", ["patient_id"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))


def downgrade() -> None:
    op.drop_index("ux_patient_key_one_active", table_name="patient_key")
