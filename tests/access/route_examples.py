"""Example requests for every patient-scoped route, used by tests/access/test_access_matrix.py.

The matrix takes its routes from the application's own route table, so a route added later is
covered automatically — and fails until it has an entry here. When you add a route:

* whose path has an id parameter or whose handler takes `patient_id`/`entry_id`/...: add an
  `Example` under (METHOD, path template) below, saying who may use it (`kind`) and how to build a
  valid request (path parameters are filled from `tests.access.support.Ctx` attributes of the
  same name; `output` defaults to "html");
* whose id parameters are not about patients (staff, organisations, sheet schemas...): add it to
  `NOT_PATIENT_SCOPED` with the reason.

Kinds (who gets a 2xx/3xx; everyone else a 404, or 403 for administrator routes, or 401 when disabled):
  registration — team members covered by the consent, and the registering professional while no
                 consent is in force (so that one can be recorded);
  clinical     — team members covered by the consent only;
  emergency    — like clinical, plus a break-the-glass holder (read-only emergency scope);
  admin        — organisation/region administrators only (every matrix actor is a plain member);
  region_admin — region administrators only.
`expect` overrides the statuses for particular scenarios (see SCENARIOS in tests/access/support.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.access.support import ENTRY_MARKER, PDF, PNG, Ctx
from tests.factories import PASSWORD, patient_data

Build = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Example:
    kind: str
    json: Build | None = None
    form: Build | None = None
    files: Build | None = None
    params: Build | None = None
    headers: Build | None = None
    path: Build | None = None
    expect: dict[str, frozenset[int]] = field(default_factory=dict)


def _s(*codes: int) -> frozenset[int]:
    return frozenset(codes)


def _consent_body(ctx: Ctx) -> dict[str, Any]:
    return {"given_by": "proxy", "proxy_name": "山田 一郎", "proxy_relationship": "長男", "method": "verbal",
            "scope": "blanket", "obtained_on": date.today().isoformat(), "password": PASSWORD}


def _consent_form(ctx: Ctx) -> dict[str, Any]:
    return {"given_by": "patient", "method": "written", "scope": "blanket",
            "obtained_on": date.today().isoformat(), "password": PASSWORD}


def _withdraw(ctx: Ctx) -> dict[str, Any]:
    return {"reason": "本人の申し出", "password": PASSWORD}


def _break_glass(ctx: Ctx) -> dict[str, Any]:
    return {"reason_code": "sudden_deterioration", "reason": "急変のため", "password": PASSWORD}


def _review(ctx: Ctx) -> dict[str, Any]:
    return {"disposition": "appropriate"}


def _identity(ctx: Ctx) -> dict[str, Any]:
    data = patient_data()
    data.pop("team_role")
    return data


def _pdf(ctx: Ctx) -> dict[str, Any]:
    return {"file": ("consent.pdf", PDF, "application/pdf")}


# Break-the-glass: team members who are not physicians/nurses get 403 (existence is known to them);
# people who did not look the patient up get 404; a live grant or normal access gives 409.
_BREAK_GLASS_EXPECT = {
    "member_with_consent": _s(403), "non_member": _s(404), "excluded_organisation": _s(403),
    "after_withdrawal": _s(403), "expired_consent": _s(403), "ended_membership": _s(404),
    "break_glass_holder": _s(409), "break_glass_expired": _s(201), "registrar_without_consent": _s(201),
}

EXAMPLES: dict[tuple[str, str], Example] = {
    # -- patients (registration and care team) ---------------------------------------------
    ("GET", "/api/v1/patients/{patient_id}"): Example("registration"),
    ("PUT", "/api/v1/patients/{patient_id}"): Example("registration", json=_identity),
    ("GET", "/api/v1/patients/{patient_id}/team"): Example("registration"),
    ("POST", "/api/v1/patients/{patient_id}/team"): Example(
        "registration", json=lambda ctx: {"user_id": str(ctx.world.clinic_admin.id), "team_role": "physician"}),
    ("DELETE", "/api/v1/patients/{patient_id}/team/{membership_id}"): Example("registration"),
    ("GET", "/patients/{patient_id}"): Example("registration"),
    # -- consent -----------------------------------------------------------------------------
    ("GET", "/api/v1/patients/{patient_id}/consents"): Example("registration"),
    ("POST", "/api/v1/patients/{patient_id}/consents"): Example("registration", json=_consent_body),
    ("POST", "/api/v1/patients/{patient_id}/consents/{consent_id}/withdraw"): Example(
        "registration", json=_withdraw, expect={"registrar_without_consent": _s(409)}),
    ("POST", "/api/v1/patients/{patient_id}/consents/{consent_id}/attachments"): Example("registration", files=_pdf),
    ("GET", "/api/v1/patients/{patient_id}/consents/{consent_id}/attachments/{document_id}"): Example("registration"),
    ("GET", "/patients/{patient_id}/consents"): Example("registration"),
    ("POST", "/patients/{patient_id}/consents"): Example("registration", form=_consent_form),
    ("POST", "/patients/{patient_id}/consents/{consent_id}/withdraw"): Example(
        "registration", form=_withdraw, expect={"registrar_without_consent": _s(409)}),
    # -- access: break-the-glass, access log, audit ----------------------------------------------
    ("POST", "/api/v1/patients/{patient_id}/break-glass"): Example(
        "custom", json=_break_glass, expect=_BREAK_GLASS_EXPECT),
    ("POST", "/patients/{patient_id}/break-glass"): Example("custom", form=_break_glass, expect=_BREAK_GLASS_EXPECT),
    ("POST", "/api/v1/break-glass/{grant_id}/review"): Example("admin", json=_review),
    ("POST", "/api/v1/break-glass/{grant_id}/revoke"): Example("admin"),
    ("POST", "/admin/break-glass/{grant_id}/review"): Example("admin", form=_review),
    ("GET", "/api/v1/patients/{patient_id}/access-log"): Example("registration"),
    ("GET", "/patients/{patient_id}/access-log"): Example("registration"),
    ("GET", "/api/v1/audit/events"): Example("region_admin", params=lambda ctx: {"patient_id": str(ctx.patient_id)}),
    ("GET", "/admin/audit"): Example("region_admin", params=lambda ctx: {"patient_id": str(ctx.patient_id)}),
    # -- timeline (issue 4) ------------------------------------------------------------------
    ("GET", "/api/v1/patients/{patient_id}/timeline"): Example("emergency"),
    ("POST", "/api/v1/patients/{patient_id}/entries"): Example(
        "clinical", json=lambda ctx: {"sheet": "message", "data": {"text": ENTRY_MARKER}, "status": "final"}),
    ("GET", "/api/v1/patients/{patient_id}/drafts"): Example("emergency"),
    ("GET", "/api/v1/patients/{patient_id}/summary"): Example("emergency"),
    # Marking entries read is part of reading: a grant holder may, and only their scope is marked.
    ("POST", "/api/v1/patients/{patient_id}/timeline/read"): Example(
        "emergency", json=lambda ctx: {"entry_ids": [ctx.entry_id]}),
    ("POST", "/api/v1/patients/{patient_id}/attachments"): Example(
        "clinical", files=lambda ctx: {"file": ("photo.png", PNG, "image/png")},
        form=lambda ctx: {"sheet": "care-note"}),
    ("GET", "/api/v1/attachments/{attachment_id}"): Example("clinical"),
    ("GET", "/api/v1/entries/{entry_id}"): Example("clinical"),
    # A posted entry is immutable: its author gets 409 once past the access check.
    ("PUT", "/api/v1/entries/{entry_id}"): Example(
        "clinical", json=lambda ctx: {"data": {"text": "変更"}}, headers=lambda ctx: {"If-Match": '"1.1"'},
        expect={"member_with_consent": _s(409)}),
    ("POST", "/api/v1/entries/{entry_id}/amend"): Example(
        "clinical", json=lambda ctx: {"data": {"text": "訂正後の本文"}, "reason": "誤記の訂正"},
        headers=lambda ctx: {"If-Match": '"1.1"'}),
    ("POST", "/api/v1/entries/{entry_id}/entered-in-error"): Example("clinical", json=lambda ctx: {"reason": "誤入力"}),
    ("GET", "/api/v1/entries/{entry_id}/history"): Example("clinical"),
    ("POST", "/api/v1/entries/{entry_id}/read"): Example("clinical"),
    # The example entry is addressed to nobody, so there is nothing for its author to acknowledge.
    ("POST", "/api/v1/entries/{entry_id}/acknowledge"): Example(
        "clinical", expect={"member_with_consent": _s(403, 409, 422)}),
    # The emergency view a break-the-glass holder is sent to (access/pages.py links here).
    ("GET", "/patients/{patient_id}/timeline"): Example("emergency"),
    ("GET", "/entries/{entry_id}"): Example("clinical"),
    # The tablet's entry form and amendment form (issue 6): they only render, the browser posts to the API.
    ("GET", "/patients/{patient_id}/entries/new"): Example("clinical"),
    ("GET", "/entries/{entry_id}/amend"): Example("clinical"),
    # -- printing (issue 7) --------------------------------------------------------------------
    ("GET", "/print/blank/{sheet_id}.{output}"): Example(
        "clinical", path=lambda ctx: {"sheet_id": "message"}, params=lambda ctx: {"patient_id": str(ctx.patient_id)}),
    ("GET", "/print/patients/{patient_id}/consent-form.{output}"): Example("registration"),
    ("GET", "/print/patients/{patient_id}/consent-withdrawal.{output}"): Example("registration"),
    ("GET", "/print/entries/{entry_id}.{output}"): Example("clinical"),
    ("GET", "/print/patients/{patient_id}/emergency-card.{output}"): Example("emergency"),
}

NOT_PATIENT_SCOPED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/organisations/{org_id}"): "public directory entry",
    ("GET", "/api/v1/organisations/{org_id}/staff"): "staff administration (tests/directory)",
    ("POST", "/api/v1/organisations/{org_id}/staff"): "staff administration (tests/directory)",
    ("GET", "/api/v1/staff/{user_id}"): "staff administration (tests/directory)",
    ("PATCH", "/api/v1/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/disable"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/enable"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/reset-2fa"): "staff administration (tests/directory)",
    ("GET", "/admin/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/disable"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/enable"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/reset-2fa"): "staff administration (tests/directory)",
    ("GET", "/api/v1/sheets/{sheet_id}/{version}"): "a sheet's JSON Schema, no patient data",
    ("POST", "/api/v1/notifications/{notification_id}/read"): "the caller's own inbox (tests/notify)",
    ("POST", "/api/v1/paper-intake"): (
        "the patient comes from the signed QR on the scan; outsider 404 and nothing filed are tested in "
        "tests/printing/test_paper_intake.py"
    ),
}
