"""Sign-in sessions, refresh tokens and throttling counters."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class AuthSession(SQLModel, table=True):
    """One sign-in: an API refresh-token family or a browser cookie session. Revoking it ends both."""

    __tablename__ = "auth_session"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # api | web
    token_hash: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    csrf_token: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = created_at_field()
    last_seen_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_reason: str | None = Field(default=None, sa_column=Column(String(30)))


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    session_id: uuid.UUID = Field(foreign_key="auth_session.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_column=utc_column())
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class LoginThrottle(SQLModel, table=True):
    """Failure counters keyed by a digest of the email or client address (never the value itself)."""

    __tablename__ = "login_throttle"

    key: str = Field(sa_column=Column(String(80), primary_key=True))
    failures: int = 0
    window_start: datetime = Field(sa_column=utc_column(index=True))
    locked_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
