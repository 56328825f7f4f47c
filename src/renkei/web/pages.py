"""Shared helpers for server-rendered pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from renkei.auth import service as auth_service
from renkei.auth.service import Actor

# A domain adds what every signed-in page shows (the break-the-glass banner) without `web` importing it.
PageContextProvider = Callable[[Session, Actor], Mapping[str, Any]]


def page_context(request: Request, session: Session, actor: Actor, **extra: Any) -> dict[str, Any]:
    """Context every signed-in page needs: the actor, the session's CSRF token and the providers' parts."""
    context: dict[str, Any] = {"actor": actor,
                               "csrf_token": auth_service.csrf_token_for(session, actor.session_id) or ""}
    for provide in getattr(request.app.state, "page_context_providers", ()):
        context.update(provide(session, actor))
    context.update(extra)
    return context
