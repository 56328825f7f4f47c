"""同意書 and 同意撤回書: blank to be filled by hand, or printed with a recorded consent's scope for signature.

The print job remembers the consent version, so that the signed paper, photographed through paper intake,
is kept with that version (`intake`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.consent import service as consent_service
from renkei.consent.schemas import ConsentOut
from renkei.crypto.keyring import Keyring
from renkei.errors import NotFound
from renkei.patients import service as patient_service
from renkei.printing.formatting import format_date
from renkei.printing.models import PrintKind
from renkei.printing.service import (
    Output,
    Printout,
    PrintKit,
    patient_header,
    render,
    require_print,
    start_job,
)

CONSENT_FORM = ("consent", 1)
WITHDRAWAL_FORM = ("consent-withdrawal", 1)
CATEGORY_LABELS = {
    "admission": "入院時の情報（入院時情報提供書）",
    "discharge": "退院時の情報（退院・退所情報記録書）",
    "emergency": "急変時の情報（急変時情報シート）",
    "acp": "人生会議（ACP）・看取りの記録",
    "visit": "訪問診療の記録",
    "care": "日常の療養支援記録",
    "message": "連絡",
    "psychiatric": "精神・行動面の記録（各記録の該当欄）",
}


def print_consent_form(
    session: Session, *, kit: PrintKit, keyring: Keyring, actor: Actor, patient_id: uuid.UUID,
    withdrawal: bool = False, consent_id: uuid.UUID | None = None, output: Output, pdf_href: str = "",
) -> Printout:
    """同意書 (blank, or with the scope of the consent `consent_id`) or 同意撤回書 (naming the consent version
    withdrawn: `consent_id`, or the current one), with the patient header, the team and signature lines."""
    # Printing the form is how a consent is obtained, so the registrar may do it before any consent exists.
    decision = require_print(session, actor, patient_id, Action.read_consent,
                             event="print.consent_withdrawal" if withdrawal else "print.consent")
    consent = _consent(session, keyring, actor, patient_id, consent_id, withdrawal=withdrawal)
    form_id, version = WITHDRAWAL_FORM if withdrawal else CONSENT_FORM
    title, title_en = (("同意撤回書", "Withdrawal of consent") if withdrawal
                       else ("情報共有についての同意書", "Consent to share information"))
    kind = PrintKind.consent_withdrawal if withdrawal else PrintKind.consent
    doc = start_job(session, keyring, actor, kind=kind, form_id=form_id, form_version=version, title=title,
                    title_en=title_en, output=output.value, patient_id=patient_id,
                    consent_id=consent.id if consent else None)
    access.disclosed(decision, [doc["print_id"]] + ([consent.id] if consent else []))
    if consent is not None:
        doc["variant"] = "filled"
    team = patient_service.list_team(session, actor=actor, patient_id=patient_id, include_ended=False)
    names = {m["organisation_name"] for m in team}
    names |= {o.name for o in (consent.organisations if consent else [])}
    context = {
        "doc": doc, "patient": patient_header(session, keyring, patient_id), "author": None,
        "organisations": sorted(names), "categories": list(CATEGORY_LABELS.values()),
        "consent": _scope(consent) if consent else None,
    }
    return render(kit, f"_{form_id}/{version}.html.j2", context, output,
                  name=f"{form_id}-{doc['print_code']}", pdf_href=pdf_href)


def _consent(
    session: Session, keyring: Keyring, actor: Actor, patient_id: uuid.UUID, consent_id: uuid.UUID | None,
    *, withdrawal: bool,
) -> ConsentOut | None:
    if consent_id is None and not withdrawal:
        return None  # the blank 同意書, filled in by hand
    versions = consent_service.list_consents(session, keyring=keyring, actor=actor, patient_id=patient_id)
    if consent_id is None:
        return next((c for c in versions if c.status != "superseded"), None)
    found = next((c for c in versions if c.id == consent_id), None)
    if found is None:
        raise NotFound()
    return found


def _scope(consent: ConsentOut) -> dict[str, Any]:
    """What the form ticks for a recorded consent: scope, named organisations, excluded data, validity."""
    return {
        "version": consent.version, "scope": consent.scope, "status": consent.status,
        "organisations": {o.name for o in consent.organisations},
        "excluded": {CATEGORY_LABELS[c] for c in consent.excluded_categories if c in CATEGORY_LABELS},
        "obtained_on": format_date(consent.obtained_on), "valid_from": format_date(consent.valid_from),
        "valid_until": format_date(consent.valid_until),
    }
