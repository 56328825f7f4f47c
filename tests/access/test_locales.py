"""Every label the consent, access-log, break-the-glass and audit pages show exists in Japanese and English."""

from __future__ import annotations

import re

from renkei.access.models import BreakGlassReason, Disposition
from renkei.access.service import Action
from renkei.consent.models import Category, ConsentMethod, ConsentScope, GivenBy
from renkei.directory.models import Profession
from renkei.web.i18n import catalogue
from renkei.web.templating import TEMPLATES_DIR

TEMPLATES = ["consent.html", "consent_errors.html", "access_log.html", "break_glass.html", "break_glass_review.html",
             "audit.html"]
REASONS = [
    "team_consent", "registrar_before_consent", "break_glass", "listed", "registered", "exact_match", "no_match",
    "no_such_patient", "not_on_team", "no_consent", "consent_withdrawn", "consent_expired", "consent_not_yet_valid",
    "organisation_excluded", "organisation_not_included", "category_excluded", "sheet_required",
    "profession_not_allowed", "outside_break_glass_scope", "not_a_decision", "reauth_failed", "reauth_throttled",
    "no_prior_lookup", "already_has_access", "grant_active", "region_admin", "revoked", "grant_revoked",
    "lookup_throttled", "member_not_eligible", "not_team_lead", "recorder_before_consent", "counted",
    "request_failed", "org_admin", "ok", "throttled", "unknown_account", "wrong_password", "account_disabled",
    "otp_required", "wrong_otp",
    *(r.value for r in BreakGlassReason), *(d.value for d in Disposition),
]


def _keys() -> set[str]:
    keys = set()
    for name in TEMPLATES:
        source = (TEMPLATES_DIR / name).read_text("utf-8")
        keys |= set(re.findall(r"""(?<![\w.])t\(["']([a-z0-9_]+)["']\s*[,)]""", source))
    keys |= {f"category_{c.value}" for c in Category}
    keys |= {f"consent_method_{m.value}" for m in ConsentMethod}
    keys |= {f"consent_scope_{s.value}" for s in ConsentScope}
    keys |= {f"consent_given_by_{g.value}" for g in GivenBy}
    keys |= {f"consent_status_{s}" for s in ("active", "withdrawn", "superseded", "expired", "not_yet_valid")}
    keys |= {f"bg_reason_{r.value}" for r in BreakGlassReason} | {f"bg_disposition_{d.value}" for d in Disposition}
    keys |= {f"audit_action_{a.value}" for a in Action}
    keys |= {f"audit_action_{a}" for a in ("audit_search", "sign_in", "staff_admin")}
    keys |= {f"audit_reason_{r}" for r in REASONS} | {f"profession_{p.value}" for p in Profession}
    return keys


def test_every_label_of_the_consent_and_audit_pages_exists_in_both_languages():
    keys = _keys()
    assert len(keys) > 100
    for lang in ("ja", "en"):
        assert sorted(k for k in keys if not catalogue(lang).get(k)) == [], lang
