"""Shared helpers for server-rendered pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from renkei.auth import service as auth_service
from renkei.auth.service import Actor


def page_context(request: Request, session: Session, actor: Actor, **extra: Any) -> dict[str, Any]:
    """Context every signed-in page needs: the actor and the session's CSRF token."""
    return {"actor": actor, "csrf_token": auth_service.csrf_token_for(session, actor.session_id) or "", **extra}
