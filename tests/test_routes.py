"""Route table: no path served by one router is matched by a route of another, so the order in which app.py
includes the routers (busiest first) never decides which handler answers."""

from __future__ import annotations

import re

from fastapi.routing import _IncludedRouter
from starlette.routing import compile_path

SAMPLE_ID = "11111111-1111-4111-8111-111111111111"


def _flatten(routes, prefix: str = "", owner: object = None) -> list[tuple[str, set[str], object]]:
    out: list[tuple[str, set[str], object]] = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            out += _flatten(route.original_router.routes, prefix + (route.include_context.prefix or ""),
                            route.original_router)
        elif getattr(route, "path", None):
            out.append((prefix + route.path, set(getattr(route, "methods", None) or {"WEBSOCKET"}), owner))
    return out


def test_the_route_table_is_flattened_with_prefixes(app):
    paths = {path for path, _, _ in _flatten(app.routes)}
    assert "/api/v1/patients/{patient_id}/timeline" in paths and "/patients/{patient_id}" in paths
    assert len(paths) > 80


def test_no_route_of_one_router_shadows_a_path_of_another(app):
    routes = _flatten(app.routes)
    clashes = []
    for path, methods, owner in routes:
        sample = re.sub(r"\{[^}]+\}", SAMPLE_ID, path)
        for other, other_methods, other_owner in routes:
            if other_owner is owner or not methods & other_methods:
                continue
            if compile_path(other)[0].match(sample):
                clashes.append(f"{sorted(methods)} {path} <- {other}")
    assert clashes == []
