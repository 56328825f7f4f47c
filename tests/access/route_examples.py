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
                 consent is in force;
  consent      — like registration, plus the team's physicians and care managers while no consent is in
                 force (withdrawn or expired), so that a new consent can be recorded: the matrix's team
                 member is a care manager;
  clinical     — team members covered by the consent only;
  emergency    — like clinical, plus a break-the-glass holder (read-only emergency scope);
  admin        — organisation/region administrators only (every matrix actor is a plain member).
`expect` overrides the statuses for particular scenarios (see SCENARIOS in tests/access/support.py).

Every other route is classified too (tests/access/test_route_classification.py): ID_LESS routes return
patient data without naming a patient in the path (each with a check that an outsider sees none of it),
NOT_PATIENT_SCOPED routes hold none, and PUBLIC lists every route that answers without sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from renkei.directory.models import User
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
    return {"reason_code": "sudden_deterioration", "reason": "急変のため", "password": PASSWORD, "confirm": True}


def _review(ctx: Ctx) -> dict[str, Any]:
    return {"disposition": "appropriate"}


def _identity(ctx: Ctx) -> dict[str, Any]:
    data = patient_data()
    data.pop("team_role")
    return data


def _pdf(ctx: Ctx) -> dict[str, Any]:
    return {"file": ("consent.pdf", PDF, "application/pdf")}


# Consent changes while no consent is in force: a renewer reaches the route, but the world's consent is
# withdrawn (or superseded by a lapsed version) and takes no withdrawal or scan any more.
_ENDED = {"after_withdrawal": _s(409), "expired_consent": _s(409), "registrar_without_consent": _s(409)}

# Break-the-glass: team members who are not physicians/nurses get 403 (existence is known to them);
# people who did not look the patient up get 404; a live grant or normal access gives 409.
_BREAK_GLASS_EXPECT = {
    "member_with_consent": _s(403), "non_member": _s(404), "excluded_organisation": _s(403),
    "after_withdrawal": _s(403), "expired_consent": _s(403), "ended_membership": _s(404),
    "break_glass_holder": _s(409), "break_glass_expired": _s(201), "registrar_without_consent": _s(201),
}

EXAMPLES: dict[tuple[str, str], Example] = {
    # -- patients (registration and care team) ---------------------------------------------
    ("GET", "/api/v1/patients/{patient_id}"): Example("consent"),
    ("PUT", "/api/v1/patients/{patient_id}"): Example("registration", json=_identity),
    ("GET", "/api/v1/patients/{patient_id}/team"): Example("consent"),
    ("POST", "/api/v1/patients/{patient_id}/team"): Example(
        "registration", json=lambda ctx: {"user_id": str(ctx.world.clinic_admin.id), "team_role": "physician"}),
    ("DELETE", "/api/v1/patients/{patient_id}/team/{membership_id}"): Example("registration"),
    ("GET", "/patients/{patient_id}"): Example("consent"),
    ("GET", "/patients/{patient_id}/edit"): Example("registration"),
    ("POST", "/patients/{patient_id}/edit"): Example("registration", form=_identity),
    # -- consent -----------------------------------------------------------------------------
    ("GET", "/api/v1/patients/{patient_id}/consents"): Example("consent"),
    ("POST", "/api/v1/patients/{patient_id}/consents"): Example("consent", json=_consent_body),
    ("POST", "/api/v1/patients/{patient_id}/consents/{consent_id}/withdraw"): Example(
        "consent", json=_withdraw, expect=_ENDED),
    ("POST", "/api/v1/patients/{patient_id}/consents/{consent_id}/attachments"): Example(
        "consent", files=_pdf, expect=_ENDED),
    ("GET", "/api/v1/patients/{patient_id}/consents/{consent_id}/attachments/{document_id}"): Example(
        "consent"),
    ("GET", "/patients/{patient_id}/consents"): Example("consent"),
    ("POST", "/patients/{patient_id}/consents"): Example("consent", form=_consent_form),
    ("POST", "/patients/{patient_id}/consents/{consent_id}/withdraw"): Example(
        "consent", form=_withdraw, expect=_ENDED),
    ("POST", "/patients/{patient_id}/consents/{consent_id}/attachments"): Example(
        "consent", files=_pdf, expect=_ENDED),
    # -- access: break-the-glass, access log, audit ----------------------------------------------
    ("POST", "/api/v1/patients/{patient_id}/break-glass"): Example(
        "custom", json=_break_glass, expect=_BREAK_GLASS_EXPECT),
    ("POST", "/patients/{patient_id}/break-glass"): Example("custom", form=_break_glass, expect=_BREAK_GLASS_EXPECT),
    ("POST", "/api/v1/break-glass/{grant_id}/review"): Example("admin", json=_review),
    ("POST", "/api/v1/break-glass/{grant_id}/revoke"): Example("admin"),
    ("POST", "/admin/break-glass/{grant_id}/review"): Example("admin", form=_review),
    ("GET", "/api/v1/patients/{patient_id}/access-log"): Example("registration"),
    ("GET", "/patients/{patient_id}/access-log"): Example("registration"),
    ("GET", "/api/v1/audit/events"): Example("admin", params=lambda ctx: {"patient_id": str(ctx.patient_id)}),
    ("GET", "/admin/audit"): Example("admin", params=lambda ctx: {"patient_id": str(ctx.patient_id)}),
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
    ("GET", "/print/patients/{patient_id}/consent-form.{output}"): Example("consent"),
    ("GET", "/print/patients/{patient_id}/consent-withdrawal.{output}"): Example("consent"),
    ("GET", "/print/entries/{entry_id}.{output}"): Example("clinical"),
    ("GET", "/print/patients/{patient_id}/emergency-card.{output}"): Example("emergency"),
    # Narrowed like the timeline: a break-the-glass holder lists the emergency scope's paper only.
    ("GET", "/api/v1/patients/{patient_id}/paper-intakes"): Example("emergency"),
}

@dataclass(frozen=True)
class IdLess:
    """A route that returns patient data without a patient in its path. `member` sees the world's patient in
    the answer (`marker`), `outsider` sees nothing of it: no identifying data, no entry, and no patient id
    unless `outsider_may_see_id` says why. `typed`: what the request itself sends (echoed in a form), not a
    disclosure. `audited`: the member's request leaves a row naming the patient."""

    call: Callable[[Ctx, dict[str, str]], Any]
    member: Callable[[Ctx], User]
    outsider: Callable[[Ctx], User]
    arrange: Callable[[Ctx], Any] | None = None
    marker: Callable[[Ctx], str] = lambda ctx: str(ctx.patient_id)
    outsider_may_see_id: str | None = None
    typed: tuple[str, ...] = ()
    audited: bool = True


def _care_manager(ctx: Ctx) -> User:
    return ctx.care_manager


def _outsider(ctx: Ctx) -> User:
    return ctx.world.outsider


def _name(ctx: Ctx) -> str:
    return "山田 花子"


_BY_INSURANCE = {"insurance_number": "0000123456"}
_LOOKUP_ANSWER = ("an exact lookup answers with the id (to physicians and nurses also sex and age band), "
                  "never a name")

ID_LESS: dict[tuple[str, str], IdLess | str] = {
    ("GET", "/api/v1/patients"): IdLess(
        lambda ctx, h: ctx.client.get("/api/v1/patients", headers=h), member=_care_manager,
        outsider=_outsider),
    ("POST", "/api/v1/patients/lookup"): IdLess(
        lambda ctx, h: ctx.client.post("/api/v1/patients/lookup", headers=h, json=_BY_INSURANCE),
        member=_care_manager, outsider=_outsider, outsider_may_see_id=_LOOKUP_ANSWER),
    ("GET", "/api/v1/break-glass/reviews"): IdLess(
        lambda ctx, h: ctx.client.get("/api/v1/break-glass/reviews", headers=h),
        arrange=lambda ctx: ctx.grant_id,
        member=lambda ctx: ctx.hospital_admin, outsider=lambda ctx: ctx.world.clinic_admin),
    ("GET", "/api/v1/timeline/unread-counts"): IdLess(
        lambda ctx, h: ctx.client.get("/api/v1/timeline/unread-counts", headers=h), member=_care_manager,
        outsider=_outsider),
    # Ids and kinds only, put there by an event that was audited itself (here the break-the-glass grant).
    ("GET", "/api/v1/notifications"): IdLess(
        lambda ctx, h: ctx.client.get("/api/v1/notifications", headers=h), arrange=lambda ctx: ctx.grant_id,
        member=lambda ctx: ctx.world.physician, outsider=_outsider, audited=False),
    ("GET", "/patients"): IdLess(
        lambda ctx, h: ctx.client.get("/patients", headers=h), member=_care_manager, outsider=_outsider,
        marker=_name),
    ("POST", "/emergency/lookup"): IdLess(
        lambda ctx, h: ctx.client.post("/emergency/lookup", headers=h, data=_BY_INSURANCE),
        member=lambda ctx: ctx.er_physician, outsider=_outsider, outsider_may_see_id=_LOOKUP_ANSWER,
        typed=("0000123456",)),
    ("GET", "/admin/break-glass"): IdLess(
        lambda ctx, h: ctx.client.get("/admin/break-glass", headers=h), arrange=lambda ctx: ctx.grant_id,
        member=lambda ctx: ctx.hospital_admin, outsider=lambda ctx: ctx.world.clinic_admin),
    ("GET", "/addressed"): IdLess(
        lambda ctx, h: ctx.client.get("/addressed", headers=h), arrange=lambda ctx: ctx.addressed_entry_id,
        member=_care_manager, outsider=_outsider, marker=_name),
    # The upload page: my patients (for a form without a QR) and my paper awaiting transcription.
    ("GET", "/paper-intake"): IdLess(
        lambda ctx, h: ctx.client.get("/paper-intake", headers=h), member=_care_manager, outsider=_outsider,
        marker=_name),
    # Live events need the real event hub (a server process): tested there, and that test must exist.
    ("WS", "/ws"): (
        "tests.notify.test_live_delivery:test_an_outsider_receives_nothing_of_a_patient_they_do_not_treat"),
}


NOT_PATIENT_SCOPED: dict[tuple[str, str], str] = {
    # -- the application's own surface -----------------------------------------------------------
    ("GET", "/openapi.json"): "the API description",
    ("GET", "/docs"): "the API description",
    ("GET", "/docs/oauth2-redirect"): "the API description",
    ("GET", "/redoc"): "the API description",
    ("MOUNT", "/static"): "scripts, styles and icons",
    ("GET", "/healthz"): "liveness",
    ("GET", "/readyz"): "readiness",
    ("POST", "/lang"): "the language cookie",
    ("GET", "/"): "a redirect to the patient list or the sign-in page",
    # -- the caller's own account and session --------------------------------------------------
    ("POST", "/api/v1/auth/login"): "sign-in", ("POST", "/api/v1/auth/refresh"): "token refresh",
    ("POST", "/api/v1/auth/logout"): "sign-out", ("GET", "/api/v1/me"): "the caller's own profile",
    ("POST", "/api/v1/auth/totp/enrol"): "own two-factor setup",
    ("POST", "/api/v1/auth/totp/confirm"): "own two-factor setup",
    ("POST", "/api/v1/auth/totp/disable"): "own two-factor setup",
    ("POST", "/api/v1/auth/password"): "own password",
    ("GET", "/login"): "sign-in", ("POST", "/login"): "sign-in", ("POST", "/logout"): "sign-out",
    ("GET", "/account/2fa"): "own two-factor setup", ("POST", "/account/2fa"): "own two-factor setup",
    ("POST", "/account/2fa/start"): "own two-factor setup",
    ("POST", "/api/v1/ws-ticket"): "a ticket for the caller's own socket (what it delivers: ID_LESS /ws)",
    # -- directory and sheets -------------------------------------------------------------------
    ("GET", "/api/v1/organisations"): "public directory",
    ("POST", "/api/v1/organisations"): "region administration (tests/directory)",
    ("GET", "/api/v1/organisations/{org_id}"): "public directory entry",
    ("GET", "/api/v1/organisations/{org_id}/staff"): "staff administration (tests/directory)",
    ("POST", "/api/v1/organisations/{org_id}/staff"): "staff administration (tests/directory)",
    ("GET", "/api/v1/staff/{user_id}"): "staff administration (tests/directory)",
    ("PATCH", "/api/v1/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/disable"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/enable"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/reset-2fa"): "staff administration (tests/directory)",
    ("POST", "/api/v1/staff/{user_id}/enrolment-code"): "staff administration (tests/directory)",
    ("GET", "/admin/staff"): "staff administration (tests/directory)",
    ("POST", "/admin/staff"): "staff administration (tests/directory)",
    ("GET", "/admin/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/disable"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/enable"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/reset-2fa"): "staff administration (tests/directory)",
    ("GET", "/admin/staff/{user_id}/disable"): "staff administration (tests/directory)",
    ("GET", "/admin/staff/{user_id}/reset-2fa"): "staff administration (tests/directory)",
    ("POST", "/admin/staff/{user_id}/enrolment-code"): "staff administration (tests/directory)",
    ("GET", "/api/v1/sheets"): "the list of sheet schemas",
    ("GET", "/api/v1/sheets/{sheet_id}/{version}"): "a sheet's JSON Schema, no patient data",
    # -- patient-related, but about no existing patient's data ------------------------------------
    ("POST", "/api/v1/patients"): "registers a patient, answers with that new patient only (tests/patients)",
    ("GET", "/patients/new"): "an empty registration form",
    ("POST", "/patients/new"): "registers a patient, redirects to that new patient only (tests/pages)",
    ("GET", "/emergency"): "the empty lookup form; the banner names grant ids only",
    ("POST", "/api/v1/notifications/{notification_id}/read"): "the caller's own inbox (tests/notify)",
    ("POST", "/api/v1/paper-intake"): (
        "the patient comes from the signed QR on the scan; outsider 404 and nothing filed are tested in "
        "tests/printing/test_paper_intake.py"
    ),
}

# Routes that answer without sign-in. Any other route must refuse an anonymous request (401, or the
# sign-in page for pages): tests/access/test_route_classification.py tries each one.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/login"): "sign-in page", ("POST", "/login"): "sign-in (login CSRF cookie)",
    ("POST", "/lang"): "language switch", ("GET", "/"): "redirects to sign-in",
    ("POST", "/api/v1/auth/login"): "sign-in", ("POST", "/api/v1/auth/refresh"): "spends a refresh token",
    ("GET", "/healthz"): "liveness", ("GET", "/readyz"): "readiness",
    ("GET", "/openapi.json"): "API docs", ("GET", "/docs"): "API docs",
    ("GET", "/docs/oauth2-redirect"): "API docs",
    ("GET", "/redoc"): "API docs", ("MOUNT", "/static"): "static files",
    ("WS", "/ws"): "a single-use ticket is its first message (tests/notify/test_live_security.py)",
}
