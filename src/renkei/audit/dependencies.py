"""Region administrators only: the whole audit log is theirs to search."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from renkei.auth.dependencies import ActorDep
from renkei.auth.service import Actor
from renkei.errors import Forbidden


def require_region_admin(actor: ActorDep) -> Actor:
    if not actor.is_region_admin:
        raise Forbidden("Region administrators only")
    return actor


RegionAdminDep = Annotated[Actor, Depends(require_region_admin)]
