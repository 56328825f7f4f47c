"""Who may search the audit log: region administrators all of it, organisation administrators their
own staff's actions (narrowed in the service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from renkei.auth.dependencies import ActorDep
from renkei.auth.service import Actor
from renkei.errors import Forbidden


def require_auditor(actor: ActorDep) -> Actor:
    if not actor.is_org_admin:
        raise Forbidden("Organisation or region administrators only")
    return actor


AuditorDep = Annotated[Actor, Depends(require_auditor)]
