"""Notification tables: the inbox (one row per recipient), the event outbox, and websocket tickets.

Ids, codes and times only: the client fetches content through the API, where access is decided.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from renkei.db.base import created_at_field, id_field, utc_column


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_read", "user_id", "read_at", "created_at"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id")
    refs: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object of ids
    urgent: bool = False
    created_at: datetime = created_at_field()
    read_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Audience(StrEnum):
    """Who an outbox event is for; every live delivery is decided again when it is sent."""

    # The patient's team, each member filtered through the access decision point at delivery time;
    # with `user_id`, only that member (an addressee, an author), still filtered.
    team = "team"
    # One user whose entitlement does not come from the team (an org admin told of a break-the-glass
    # grant): delivered to `user_id` without a patient access decision.
    user = "user"
    # For the event hubs only, never sent to a client: sessions ended (logout, account disabled).
    control = "control"


class OutboxEvent(SQLModel, table=True):
    """An event appended in the same transaction as the change that caused it.

    `seq` is assigned as max + 1 while appends are serialised until commit (see service.append), so a
    reader that has seen `seq` n will never later find a committed event with a smaller number.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_patient_seq", "patient_id", "seq"),
        Index("ix_outbox_event_user_seq", "user_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    audience: str = Field(sa_column=Column(String(10), nullable=False))
    patient_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    # The data category the event discloses (an entry's): delivery asks access for reading it.
    category: str | None = Field(default=None, sa_column=Column(String(20)))
    urgent: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    refs: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object of ids and codes
    created_at: datetime = created_at_field()


class WsTicket(SQLModel, table=True):
    """A single-use websocket ticket, stored hashed so that any app process can redeem it."""

    __tablename__ = "ws_ticket"

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: uuid.UUID = Field(foreign_key="user_account.id")
    session_id: uuid.UUID = Field(foreign_key="auth_session.id")
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_column=utc_column(index=True))
    used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
