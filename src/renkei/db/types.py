"""Column types shared by every domain."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.types import TypeDecorator

# Calendar dates (consent validity, team start and end days, ages) are Japanese dates, whatever time zone
# the server runs in: 00:30 in Tokyo is already tomorrow while UTC still says today.
JST = ZoneInfo("Asia/Tokyo")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Ciphertext(TypeDecorator[bytes]):
    """Opaque AEAD envelope; encryption happens in services, which know the patient's data key."""

    impl = LargeBinary
    cache_ok = True


def utcnow() -> datetime:
    return datetime.now(UTC)


def today_jst() -> date:
    """Today's date in Japan."""
    return datetime.now(JST).date()


def new_id() -> uuid.UUID:
    return uuid.uuid4()
