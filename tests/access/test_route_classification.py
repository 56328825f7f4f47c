"""Every route of the application is classified: patient-scoped (the access matrix), returning patient data
without a patient in its path (each checked here: outsiders see none of it), or holding no patient data.
And every route that answers without sign-in is on an explicit list."""

from __future__ import annotations

import importlib
import json
import uuid

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from tests.access.route_examples import EXAMPLES, ID_LESS, NOT_PATIENT_SCOPED, PUBLIC, IdLess
from tests.access.route_table import PARAM, ROUTES
from tests.access.support import ENTRY_MARKER, PATIENT_SECRETS, Ctx

ALL = [r.key for r in ROUTES]
CHECKED = [key for key, how in ID_LESS.items() if isinstance(how, IdLess)]


def _id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


@pytest.mark.parametrize("key", ALL, ids=_id)
def test_every_route_is_classified_exactly_once(key):
    homes = [name for name, table in (("EXAMPLES", EXAMPLES), ("ID_LESS", ID_LESS),
                                       ("NOT_PATIENT_SCOPED", NOT_PATIENT_SCOPED)) if key in table]
    assert len(homes) == 1, (
        f"{_id(key)} is in {homes or 'no list'} of tests/access/route_examples.py: put it in exactly one — "
        "EXAMPLES (takes a patient), ID_LESS (returns patient data without one, with a check) or "
        "NOT_PATIENT_SCOPED (with the reason it holds no patient data)")


def test_no_classification_names_a_route_that_no_longer_exists():
    listed = set(EXAMPLES) | set(ID_LESS) | set(NOT_PATIENT_SCOPED) | set(PUBLIC)
    assert sorted(listed - set(ALL)) == []


@pytest.mark.parametrize("key", [k for k, how in ID_LESS.items() if isinstance(how, str)], ids=_id)
def test_a_route_checked_elsewhere_names_a_test_that_exists(key):
    module, name = ID_LESS[key].split(":")  # type: ignore[union-attr]
    assert callable(getattr(importlib.import_module(module), name, None)), ID_LESS[key]


def _rows_naming(db, request_id: str, patient_id: uuid.UUID) -> list[AuditEvent]:
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))
    return [r for r in rows if r.patient_id == patient_id or str(patient_id) in json.loads(r.target_ids)]


@pytest.mark.parametrize("key", CHECKED, ids=_id)
def test_a_route_without_a_patient_id_shows_the_patient_to_the_team_and_nothing_to_an_outsider(
    key, client, db, settings, keyring, world,
):
    how = ID_LESS[key]
    assert isinstance(how, IdLess)
    ctx = Ctx(client, db, settings, keyring, world)
    if how.arrange:
        how.arrange(ctx)
    member = how.call(ctx, ctx.headers(how.member(ctx)))
    assert member.status_code == 200, member.text[:300]
    assert how.marker(ctx) in member.text, f"{_id(key)}: the team member does not see the patient"
    if how.audited:
        assert _rows_naming(db, member.headers["x-request-id"], ctx.patient_id), f"{_id(key)} is not audited"
    outsider = how.call(ctx, ctx.headers(how.outsider(ctx)))
    assert outsider.status_code in (200, 403, 404), outsider.text[:300]
    for secret in (*PATIENT_SECRETS, ENTRY_MARKER):
        if secret not in how.typed:
            assert secret not in outsider.text, f"{_id(key)} shows an outsider {secret!r}"
    if not how.outsider_may_see_id:
        assert str(ctx.patient_id) not in outsider.text, f"{_id(key)} shows an outsider the patient's id"


# -- sign-in ----------------------------------------------------------------------------------


def _anonymous_url(path: str) -> str:
    filler = {"output": "html", "version": "1", "sheet_id": "message"}
    return PARAM.sub(lambda m: filler.get(m.group(1), str(uuid.uuid4())), path)


def _refused(response) -> bool:
    """An anonymous request was turned away: 401 from the API, the sign-in page for pages."""
    if response.status_code == 401:
        return True
    return response.status_code == 303 and response.headers.get("location", "").startswith("/login")


@pytest.mark.parametrize("key", [r.key for r in ROUTES if r.method not in ("WS", "MOUNT")], ids=_id)
def test_only_listed_routes_answer_without_sign_in(key, client):
    method, path = key
    response = client.request(method, _anonymous_url(path), follow_redirects=False)
    if key in PUBLIC:
        return
    assert _refused(response), (
        f"{_id(key)} answered {response.status_code} without sign-in: require a signed-in actor, or list "
        "it in PUBLIC of tests/access/route_examples.py with the reason")


def test_the_public_routes_are_the_expected_few():
    # Adding one is a decision: it widens what anyone on the network can reach.
    assert {path for _, path in PUBLIC} == {
        "/login", "/lang", "/", "/api/v1/auth/login", "/api/v1/auth/refresh", "/healthz", "/readyz",
        "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static", "/ws"}
