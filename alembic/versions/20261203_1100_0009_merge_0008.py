"""Merge the four 0008 branches (append-only consent/audit, timeline feed, paper entries, enrolment codes).

Revision ID: 0009
Revises: 0008a, 0008b, 0008c, 0008e
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

revision = "0009"
down_revision = ("0008a", "0008b", "0008c", "0008e")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch different tables. One head again, for `alembic upgrade head`."""


def downgrade() -> None:
    """Nothing to undo."""
