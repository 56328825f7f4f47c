"""The application's own route table, read once per test run: every HTTP route, websocket and mount."""

from __future__ import annotations

import inspect
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, WebSocketRoute

from renkei.app import create_app
from renkei.config import Settings

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


@dataclass(frozen=True)
class Route:
    method: str  # an HTTP method, "WS" for a websocket, "MOUNT" for a mounted application
    path: str
    names: frozenset[str]  # parameter names of the path and the handler

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def route_table() -> list[Route]:
    """Every route of a freshly built application."""
    tmp = Path(tempfile.mkdtemp(prefix="renkei-routes-"))
    app = create_app(Settings(environment="test", var_dir=tmp, database_url="sqlite://"))
    table = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, Mount):
            table.append(Route("MOUNT", path, frozenset()))
            continue
        names = frozenset(PARAM.findall(path)) | frozenset(inspect.signature(context.endpoint).parameters)
        if isinstance(route, WebSocketRoute) or not context.methods:
            table.append(Route("WS", path, names))
            continue
        table.extend(Route(method, path, names) for method in sorted(set(context.methods) - {"HEAD"}))
    return table


ROUTES = route_table()
