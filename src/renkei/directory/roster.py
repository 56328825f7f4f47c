"""The region's professionals as a directory for choosing care-team members: names, professions, offices.

Staff names are directory data, not patient data; e-mail addresses and roles stay with the org admins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.directory.models import Organisation, User


@dataclass(frozen=True)
class Professional:
    id: uuid.UUID
    name: str
    name_kana: str | None
    profession: str
    organisation_id: uuid.UUID
    organisation_name: str


def active_professionals(session: Session) -> list[Professional]:
    """Every active professional of an active organisation, by organisation then kana."""
    rows = session.execute(
        select(User, Organisation.name)
        .join(Organisation, Organisation.id == User.organisation_id)
        .where(User.active, Organisation.active)
        .order_by(Organisation.name, User.name_kana, User.name)
    ).all()
    return [Professional(u.id, u.name, u.name_kana, u.profession, u.organisation_id, org) for u, org in rows]
