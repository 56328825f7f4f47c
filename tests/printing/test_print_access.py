"""Printing goes through the access decision point and the audit log; a printout shows no more than the screen."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from renkei.access.models import BreakGlassGrant
from renkei.audit.models import AuditEvent
from renkei.db.types import utcnow
from renkei.printing.models import PrintJob
from renkei.printing.render import pdf_page_png, pdf_text
from tests.factories import grant_consent, make_org, make_user
from tests.printing.conftest import ARTIFACTS
from tests.printing.test_print_forms import flat
from tests.timeline.support import posted


def _break_glass_physician(db, patient_id: uuid.UUID):
    hospital = make_org(db, "救急 総合病院", "hospital")
    er = make_user(db, hospital, profession="physician", name="救急 医師")
    db.add(BreakGlassGrant(patient_id=patient_id, user_id=er.id, organisation_id=hospital.id, profession="physician",
                           reason_code="emergency_transport", reason_ct=b"sealed-elsewhere", granted_at=utcnow(),
                           expires_at=utcnow() + timedelta(hours=1)))
    db.flush()
    return er


def test_outsider_gets_404_for_every_patient_printout(client, world, as_user):
    entry = posted(client, as_user(world.physician), world.patient_id, "message", {"text": "訪問時間の変更"})
    outsider = as_user(world.outsider)
    for url in (f"/print/entries/{entry['id']}.pdf", f"/print/entries/{entry['id']}.html",
                f"/print/blank/care-note.pdf?patient_id={world.patient_id}",
                f"/print/patients/{world.patient_id}/emergency-card.pdf",
                f"/print/patients/{world.patient_id}/consent-form.pdf",
                f"/print/patients/{world.patient_id}/consent-withdrawal.pdf"):
        r = client.get(url, headers=outsider)
        assert r.status_code == 404, url
        assert "山田" not in r.text


def test_unknown_patient_and_entry_are_404_and_unauthenticated_is_refused(client, world, as_user):
    doctor = as_user(world.physician)
    assert client.get(f"/print/entries/{uuid.uuid4()}.pdf", headers=doctor).status_code == 404
    assert client.get(f"/print/blank/care-note.pdf?patient_id={uuid.uuid4()}", headers=doctor).status_code == 404
    assert client.get("/print/blank/no-such-sheet.pdf", headers=doctor).status_code == 404
    assert client.get("/print/blank/care-note.pdf", follow_redirects=False).status_code in (303, 401)


def test_category_excluded_by_consent_is_not_printable(client, db, keyring, settings, world, as_user):
    doctor = as_user(world.physician)
    acp = posted(client, doctor, world.patient_id, "message", {"text": "ACP"})  # posted before the exclusion
    grant_consent(db, keyring, world.patient_id, world.physician, excluded_categories=["message"], settings=settings)
    assert client.get(f"/print/entries/{acp['id']}.pdf", headers=doctor).status_code == 404
    assert client.get(f"/print/blank/message.pdf?patient_id={world.patient_id}", headers=doctor).status_code == 404
    assert client.get(f"/print/blank/care-note.html?patient_id={world.patient_id}", headers=doctor).status_code == 200


def test_break_glass_holder_may_print_the_emergency_card_only(client, db, world, as_user):
    posted(client, as_user(world.physician), world.patient_id, "emergency-info",
           {"resuscitation": {"wish": "dnar"}, "allergies": [{"substance": "ペニシリン", "reaction": "発疹"}]})
    er = as_user(_break_glass_physician(db, world.patient_id))
    card = client.get(f"/print/patients/{world.patient_id}/emergency-card.pdf", headers=er)
    assert card.status_code == 200
    assert "ペニシリン" in flat("".join(pdf_text(card.content)))
    r = client.get(f"/print/blank/emergency-info.pdf?patient_id={world.patient_id}",
                   headers={**er, "accept": "application/json"})
    assert r.status_code == 403
    assert r.json()["error"] == "break_glass_print_refused"


def test_printing_is_audited_and_recorded_as_a_print_job(client, db, world, as_user):
    entry = posted(client, as_user(world.physician), world.patient_id, "message", {"text": "連絡です"})
    r = client.get(f"/print/entries/{entry['id']}.html", headers=as_user(world.nurse))
    assert r.status_code == 200
    job = db.scalars(select(PrintJob).where(PrintJob.entry_id == uuid.UUID(entry["id"]))).one()
    assert (job.printed_by, job.patient_id, job.form_id, job.kind) == (world.nurse.id, world.patient_id, "message",
                                                                        "entry")
    rows = db.scalars(select(AuditEvent).where(AuditEvent.patient_id == world.patient_id,
                                               AuditEvent.action == "print")).all()
    assert any(row.event == "print.entry" and entry["id"] in row.target_ids and str(job.id) in row.target_ids
               and row.actor_user_id == world.nurse.id for row in rows)


def test_html_print_view_is_a_static_document_without_script(client, world, as_user):
    r = client.get(f"/print/blank/acp.html?patient_id={world.patient_id}", headers=as_user(world.physician))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "<script" not in r.text and "人生会議" in r.text and "山田 花子" in r.text


def test_download_name_reveals_nothing_about_the_patient(client, world, as_user):
    r = client.get(f"/print/blank/care-note.pdf?patient_id={world.patient_id}", headers=as_user(world.physician))
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('inline; filename="care-note-blank-') and str(world.patient_id) not in disposition


def test_emergency_card_summarises_dnar_diseases_medication_allergies_and_contacts(client, world, as_user):
    data = {
        "diseases": [{"name": "慢性心不全"}], "medications": [{"name": "フロセミド錠", "dose": "1錠"}],
        "allergies": [{"substance": "そば", "reaction": "じんましん"}],
        "contacts": {"attending_physician": {"clinic": "みどり在宅クリニック", "phone_24h": "048-555-0199"}},
        "emergency_contacts": [{"name": "田中 浩", "relationship": "長男", "phone": "090-5555-0456"}],
        "resuscitation": {"wish": "dnar"},
    }
    doctor = as_user(world.physician)
    posted(client, doctor, world.patient_id, "emergency-info", data)
    page = client.get(f"/print/patients/{world.patient_id}/emergency-card.pdf", headers=doctor)
    pages = pdf_text(page.content)
    assert len(pages) == 1
    text = flat(pages[0])
    for expected in ("■心肺蘇生は望まない", "慢性心不全", "フロセミド錠", "そば", "048-555-0199", "田中浩", "印刷日"):
        assert expected in text
    card = client.get(f"/print/patients/{world.patient_id}/emergency-card.pdf?format=card", headers=doctor)
    card_pages = pdf_text(card.content)
    assert len(card_pages) == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "emergency-card.png").write_bytes(pdf_page_png(page.content, 0))
    (ARTIFACTS / "emergency-card-folded.png").write_bytes(pdf_page_png(card.content, 0))
    assert "048-555-0199" in flat(card_pages[0]) and "山折り" in card_pages[0]


def test_consent_and_withdrawal_forms_list_the_team_and_have_signature_lines(client, world, as_user):
    doctor = as_user(world.physician)
    consent = flat("".join(pdf_text(client.get(f"/print/patients/{world.patient_id}/consent-form.pdf",
                                               headers=doctor).content)))
    for expected in ("情報共有についての同意書", "□一括同意", "□個別同意", "テスト在宅クリニック",
                     "テスト訪問看護ステーション", "本人署名", "代理人署名", "山田花子様"):
        assert expected in consent
    assert "よその居宅介護支援事業所" not in consent
    withdrawal = flat("".join(pdf_text(client.get(f"/print/patients/{world.patient_id}/consent-withdrawal.pdf",
                                                  headers=doctor).content)))
    assert "同意撤回書" in withdrawal and "撤回日" in withdrawal and "本人署名" in withdrawal


def test_break_glass_emergency_card_leaves_out_the_registration_address_and_phone(client, db, world, as_user):
    posted(client, as_user(world.physician), world.patient_id, "emergency-info",
           {"resuscitation": {"wish": "dnar"}})
    er = as_user(_break_glass_physician(db, world.patient_id))
    assert client.get(f"/api/v1/patients/{world.patient_id}", headers=er).status_code == 404
    for variant in ("", "?format=card"):
        card = client.get(f"/print/patients/{world.patient_id}/emergency-card.html{variant}", headers=er)
        assert card.status_code == 200
        assert "山田 花子" in card.text and "ヤマダ ハナコ" in card.text and "1938年4月2日" in card.text
        assert "みどり市中央1-2-3" not in card.text and "0120-000-000" not in card.text
    team = client.get(f"/print/patients/{world.patient_id}/emergency-card.html", headers=as_user(world.nurse))
    assert "みどり市中央1-2-3" in team.text and "0120-000-000" in team.text


def test_refused_break_glass_print_is_audited_as_a_denial(client, db, world, as_user):
    entry = posted(client, as_user(world.physician), world.patient_id, "emergency-info",
                   {"resuscitation": {"wish": "dnar"}})
    holder = _break_glass_physician(db, world.patient_id)
    er = {**as_user(holder), "accept": "application/json"}
    assert client.get(f"/print/entries/{entry['id']}.html", headers=er).status_code == 403
    blank = f"/print/blank/emergency-info.html?patient_id={world.patient_id}"
    assert client.get(blank, headers=er).status_code == 403
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == holder.id,
                                               AuditEvent.action == "print")).all()
    assert sorted((row.event, row.decision, row.reason) for row in rows) == [
        ("print.blank", "deny", "break_glass_print_refused"),
        ("print.entry", "deny", "break_glass_print_refused"),
    ]
    assert all(row.grant_id is not None and row.patient_id == world.patient_id for row in rows)
    assert not db.scalars(select(PrintJob).where(PrintJob.printed_by == holder.id)).all()


def test_a_fully_blank_printout_needs_sign_in_and_is_audited_without_a_patient(client, db, world, as_user):
    r = client.get("/print/blank/care-note.pdf", follow_redirects=False, headers={"accept": "application/json"})
    assert r.status_code == 401
    assert client.get("/print/blank/care-note.html", headers=as_user(world.nurse)).status_code == 200
    job = db.scalars(select(PrintJob).where(PrintJob.printed_by == world.nurse.id)).one()
    assert job.patient_id is None
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == world.nurse.id,
                                               AuditEvent.action == "print")).all()
    assert [(r.event, r.decision, r.reason, r.patient_id) for r in rows] == [
        ("print.blank", "allow", "no_patient", None)]
    assert str(job.id) in rows[0].target_ids and rows[0].sheet_ids == "care-note"
