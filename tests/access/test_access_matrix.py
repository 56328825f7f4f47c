"""The access matrix: every patient-scoped route of the application against every kind of actor.

Routes come from the application's own route table at collection time, so a route added later is
covered (or fails until it is registered in tests/access/route_examples.py).
"""

from __future__ import annotations

import inspect
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from renkei.app import create_app
from renkei.config import Settings
from tests.access.route_examples import EXAMPLES, NOT_PATIENT_SCOPED, Example
from tests.access.support import ENTRY_MARKER, PATIENT_SECRETS, SCENARIOS, Ctx

# Parameters that name a patient or something that belongs to one.
PATIENT_PARAMS = frozenset({"patient_id", "entry_id", "consent_id", "membership_id", "attachment_id", "document_id",
                            "grant_id"})
ALLOWED_FOR = {
    "registration": {"member_with_consent", "registrar_without_consent"},
    "clinical": {"member_with_consent"},
    "emergency": {"member_with_consent", "break_glass_holder"},
    "admin": set(),
    "region_admin": set(),
}
OK = frozenset({200, 201, 204, 303})
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _route_table() -> list[tuple[str, str, set[str]]]:
    """(method, path, parameter names of path and handler) for every route of a freshly built app."""
    tmp = Path(tempfile.mkdtemp(prefix="renkei-routes-"))
    app = create_app(Settings(environment="test", var_dir=tmp, database_url="sqlite://"))
    table = []
    for route in iter_route_contexts(app.routes):
        path, endpoint = route.path, route.endpoint
        if not path or endpoint is None:
            continue
        names = set(_PARAM.findall(path)) | set(inspect.signature(endpoint).parameters)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            table.append((method, path, names))
    return table


ROUTES = _route_table()
WITH_IDS = [(m, p) for m, p, names in ROUTES if _PARAM.search(p) or names & PATIENT_PARAMS]
PATIENT_SCOPED = [(m, p) for m, p, names in ROUTES if names & PATIENT_PARAMS and (m, p) not in NOT_PATIENT_SCOPED]
COVERED = [key for key in PATIENT_SCOPED if key in EXAMPLES]


def _id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


@pytest.mark.parametrize("key", WITH_IDS, ids=_id)
def test_every_route_with_an_id_is_classified(key):
    assert key in EXAMPLES or key in NOT_PATIENT_SCOPED, (
        f"{_id(key)} takes an id but is neither in EXAMPLES nor in NOT_PATIENT_SCOPED of "
        "tests/access/route_examples.py: register an example request for it (or say why it holds no patient data)"
    )


def test_no_example_names_a_route_that_no_longer_exists():
    existing = {(m, p) for m, p, _ in ROUTES}
    assert sorted(set(EXAMPLES) - existing) == []


def test_the_matrix_covers_the_routes_of_the_design_contract():
    for key in [("GET", "/api/v1/patients/{patient_id}"), ("POST", "/api/v1/patients/{patient_id}/consents"),
                ("POST", "/api/v1/patients/{patient_id}/break-glass"),
                ("GET", "/api/v1/patients/{patient_id}/access-log")]:
        assert key in COVERED


def _request_args(ctx: Ctx, method: str, path: str, example: Example) -> dict[str, Any]:
    """Build the request before the scenario changes anything (objects are created while access holds)."""
    values = example.path(ctx) if example.path else {}
    for name in _PARAM.findall(path):
        if name not in values:
            values[name] = "html" if name == "output" else getattr(ctx, name)
    url = _PARAM.sub(lambda m: str(values[m.group(1)]), path)
    args: dict[str, Any] = {"method": method, "url": url, "follow_redirects": False}
    if example.json:
        args["json"] = example.json(ctx)
    if example.form:
        args["data"] = example.form(ctx)
    if example.files:
        args["files"] = example.files(ctx)
    if example.params:
        args["params"] = example.params(ctx)
    args["extra_headers"] = example.headers(ctx) if example.headers else {}
    return args


def _expected(example: Example, scenario: str, path: str) -> frozenset[int]:
    if scenario in example.expect:
        return example.expect[scenario]
    if scenario == "disabled_user":
        # The token stops working: 401 for the API; pages send the browser to the sign-in page.
        return frozenset({401}) if path.startswith("/api/") else frozenset({303})
    if example.kind in ("admin", "region_admin"):
        return frozenset({403})
    return OK if scenario in ALLOWED_FOR[example.kind] else frozenset({404})


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("key", COVERED, ids=_id)
def test_patient_scoped_route_answers_each_actor_as_consent_team_and_grants_allow(
    key, scenario, client, db, settings, keyring, world,
):
    method, path = key
    example = EXAMPLES[key]
    ctx = Ctx(client, db, settings, keyring, world)
    args = _request_args(ctx, method, path, example)
    headers = SCENARIOS[scenario](ctx) | args.pop("extra_headers")
    response = client.request(headers=headers, **args)
    expected = _expected(example, scenario, path)
    assert response.status_code in expected, (
        f"{_id(key)} as {scenario}: {response.status_code} not in {sorted(expected)}: {response.text[:300]}"
    )
    if response.status_code not in OK:
        for secret in (*PATIENT_SECRETS, ENTRY_MARKER):
            assert secret not in response.text, f"{_id(key)} as {scenario} leaked patient data in a denial"
        if response.status_code == 404 and path.startswith("/api/"):
            assert response.json()["error"] == "not_found"
