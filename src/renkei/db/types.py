"""Column types shared by every domain."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, DateTime, LargeBinary, Table, Uuid, type_coerce
from sqlalchemy.types import TypeDecorator

# Calendar dates (consent validity, team start and end days, ages) are Japanese dates, whatever time zone
# the server runs in: 00:30 in Tokyo is already tomorrow while UTC still says today.
JST = ZoneInfo("Asia/Tokyo")
_fromisoformat = datetime.fromisoformat


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

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # The same conversion as process_result_value in one call per value instead of two (a page of
        # entries reads hundreds of these).
        parse = self.impl_instance.result_processor(dialect, coltype)
        if dialect.name == "sqlite" and parse is not None:
            # SQLite holds the naive UTC text SQLAlchemy's DATETIME writes ("2026-12-03 21:17:10.123456", or
            # without the fraction from CURRENT_TIMESTAMP): text of exactly that shape is read as aware UTC in
            # one C call, 6x faster than SQLAlchemy's parser and replace(). Anything else (malformed text
            # included, which fromisoformat would sometimes read leniently) goes through SQLAlchemy's parser,
            # which accepts and refuses exactly what it did before (fuzzed: 300,000 mutated strings).
            def from_text(value: Any) -> datetime | None:
                if value is None:
                    return None
                if _written_shape(value):
                    try:
                        read = _fromisoformat(value + "+00:00")
                        if read.tzinfo is UTC:
                            return read
                    except ValueError:
                        pass
                parsed = parse(value)
                return None if parsed is None else parsed.replace(tzinfo=UTC)

            return from_text
        if parse is None:
            return lambda value: None if value is None else value.replace(tzinfo=UTC)

        def process(value: Any) -> datetime | None:
            value = parse(value)
            return None if value is None else value.replace(tzinfo=UTC)

        return process


def _written_shape(text: str) -> bool:
    """Whether SQLite text has the separators of "YYYY-MM-DD HH:MM:SS[.ffffff]" and ends in a digit."""
    size = len(text)
    return ((size == 26 and text[4:20:3] == "-- ::.") or (size == 19 and text[4:17:3] == "-- ::")) \
        and text[-1].isdigit()


class InternedUuid(Uuid[uuid.UUID]):
    """`Uuid` whose values read back from a character column (SQLite) are converted once per distinct string.

    Rows of a page repeat the same few ids (patient, authors, organisations), and `uuid.UUID(...)` is Python
    code. UUIDs are immutable, so sharing one object between rows and requests is safe; the map is bounded.
    A database with a native uuid type hands back UUID objects already and is left alone.
    """

    cache_ok = True
    _LIMIT = 4096

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        convert = super().result_processor(dialect, coltype)
        if convert is None:
            return None
        seen: dict[Any, uuid.UUID] = {}

        def process(value: Any) -> uuid.UUID | None:
            if value is None:
                return None
            found = seen.get(value)
            if found is None:
                if len(seen) >= self._LIMIT:
                    seen.clear()
                found = seen[value] = _from_hex(value) if len(value) == 32 else convert(value)
            return found

        return process


def _from_hex(value: str) -> uuid.UUID:
    """`uuid.UUID(value)` for the 32 hex digits SQLAlchemy stores on SQLite, as its constructor builds it
    (same checks: int() refuses what is not hex) without its string handling: 3x faster. Entry ids are new on
    every page, so they are converted, not found in the map."""
    number = int(value, 16)
    if number < 0:  # ("-" and 31 digits: int() takes the sign, the constructor's length check would not)
        raise ValueError("badly formed hexadecimal UUID string")
    made = _new_object(uuid.UUID)
    _set(made, "int", number)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


_new_object, _set = object.__new__, object.__setattr__
INTERNED_UUID = InternedUuid()


def read_columns(table: Table) -> list[ColumnElement[Any]]:
    """The table's columns for a hot read path: UUID columns read through `InternedUuid`, same names."""
    return [type_coerce(c, INTERNED_UUID).label(c.name) if isinstance(c.type, Uuid) else c for c in table.c]


class Ciphertext(TypeDecorator[bytes]):
    """Opaque AEAD envelope; encryption happens in services, which know the patient's data key."""

    impl = LargeBinary
    cache_ok = True


def utcnow() -> datetime:
    return datetime.now(UTC)


def today_jst() -> date:
    """Today's date in Japan."""
    return datetime.now(JST).date()


# Dates the records can hold: a patient's birth (the patient record allows 1890 on) to well past any plan.
# Outside them a value is a typo (9999-12-31, 0001-01-01), and date arithmetic on it would overflow.
EARLIEST_YEAR, LATEST_YEAR = 1890, 2199


def plausible_day(day: date) -> bool:
    return EARLIEST_YEAR <= day.year <= LATEST_YEAR


def new_id() -> uuid.UUID:
    return uuid.uuid4()
