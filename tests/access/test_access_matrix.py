"""The access matrix: every patient-scoped route of the application against every kind of actor, and the
audit row each of those requests leaves.

Routes come from the application's own route table at collection time, so a route added later is
covered (or fails until it is classified in tests/access/route_examples.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from tests.access.route_examples import EXAMPLES, ID_LESS, NOT_PATIENT_SCOPED, Example
from tests.access.route_table import PARAM, ROUTES
from tests.access.support import ENTRY_MARKER, PATIENT_SECRETS, SCENARIOS, Ctx

# Parameters that name a patient or something that belongs to one.
PATIENT_PARAMS = frozenset({"patient_id", "entry_id", "consent_id", "membership_id", "attachment_id", "document_id",
                            "grant_id"})
RENEWED = {"after_withdrawal", "expired_consent"}  # the matrix's care manager may renew the consent then
ALLOWED_FOR = {
    "registration": {"member_with_consent", "registrar_without_consent"},
    "consent": {"member_with_consent", "registrar_without_consent", *RENEWED},
    "clinical": {"member_with_consent"},
    "emergency": {"member_with_consent", "break_glass_holder"},
    "admin": set(),
}
OK = frozenset({200, 201, 204, 303})
PATIENT_SCOPED = [r.key for r in ROUTES if r.key in EXAMPLES]


def _id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


@pytest.mark.parametrize("key", [r.key for r in ROUTES if r.names & PATIENT_PARAMS], ids=_id)
def test_every_route_naming_a_patient_object_is_in_the_matrix_or_says_why_not(key):
    assert key in EXAMPLES or key in NOT_PATIENT_SCOPED, (
        f"{_id(key)} takes a patient (or an object of one) but is neither in EXAMPLES nor in "
        "NOT_PATIENT_SCOPED of tests/access/route_examples.py: register an example request for it (or say "
        "why it holds no patient data)"
    )


def test_every_example_is_a_route_the_matrix_exercises():
    existing = {r.key for r in ROUTES}
    assert sorted(set(EXAMPLES) - existing) == [], "examples of routes that no longer exist"
    assert set(PATIENT_SCOPED) == set(EXAMPLES)
    assert not set(EXAMPLES) & (set(ID_LESS) | set(NOT_PATIENT_SCOPED)), "a route is classified twice"


def test_the_matrix_covers_the_routes_of_the_design_contract():
    for key in [("GET", "/api/v1/patients/{patient_id}"), ("POST", "/api/v1/patients/{patient_id}/consents"),
                ("POST", "/api/v1/patients/{patient_id}/break-glass"),
                ("GET", "/api/v1/patients/{patient_id}/access-log")]:
        assert key in PATIENT_SCOPED


def _request_args(ctx: Ctx, method: str, path: str, example: Example) -> dict[str, Any]:
    """Build the request before the scenario changes anything (objects are created while access holds)."""
    values = example.path(ctx) if example.path else {}
    for name in PARAM.findall(path):
        if name not in values:
            values[name] = "html" if name == "output" else getattr(ctx, name)
    url = PARAM.sub(lambda m: str(values[m.group(1)]), path)
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
    if example.kind == "admin":
        return frozenset({403})
    return OK if scenario in ALLOWED_FOR[example.kind] else frozenset({404})


def _audited(ctx: Ctx, request_id: str) -> list[AuditEvent]:
    """Rows of one request that name the world's patient (as the patient, or among the targets)."""
    ctx.db.expire_all()
    rows = ctx.db.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))
    pid = ctx.patient_id
    return [r for r in rows if r.patient_id == pid or str(pid) in json.loads(r.target_ids)]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("key", PATIENT_SCOPED, ids=_id)
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
    if scenario == "disabled_user":
        if not path.startswith("/api/"):
            assert response.headers["location"].startswith("/login"), response.headers.get("location")
        return
    if example.kind != "admin":
        # Allowed or denied, the request touched the patient: its audit trail says so, under its request id.
        assert _audited(ctx, response.headers["x-request-id"]), (
            f"{_id(key)} as {scenario} ({response.status_code}) left no audit row naming the patient")
