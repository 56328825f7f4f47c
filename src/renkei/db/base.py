"""Mixins and helpers for table models."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from renkei.db.types import UTCDateTime, new_id, utcnow


def utc_column(*, nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


def id_field() -> uuid.UUID:
    return Field(default_factory=new_id, primary_key=True)


def created_at_field() -> datetime:
    return Field(default_factory=utcnow, sa_column=utc_column())


__all__ = ["SQLModel", "Field", "utc_column", "id_field", "created_at_field"]
