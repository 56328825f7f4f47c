"""同意書 and 同意撤回書: printed with a recorded consent's scope (or blank), and the signed paper, photographed
through paper intake, kept with the consent version it was printed for."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from renkei.consent.models import ConsentDocument
from renkei.db.types import today_jst
from renkei.printing.formatting import format_date
from renkei.printing.render import pdf_text
from tests.factories import PASSWORD, grant_consent
from tests.printing.support import intake, own_patient, photo, printout
from tests.printing.test_print_forms import flat


def _text(client, headers, url: str) -> str:
    return flat("".join(pdf_text(printout(client, headers, url))))


def _documents(db, consent_id: uuid.UUID) -> int:
    return db.scalar(select(func.count()).select_from(ConsentDocument).where(ConsentDocument.consent_id == consent_id))


def test_consent_form_printed_for_a_recorded_consent_ticks_its_scope(client, db, keyring, settings, world, as_user):
    until = today_jst() + timedelta(days=365)
    consent_id = grant_consent(db, keyring, world.patient_id, world.physician, scope="individual",
                               organisation_ids=[world.clinic.id], excluded_categories=["message"],
                               valid_until=until, settings=settings)
    doctor = as_user(world.physician)
    text = _text(client, doctor, f"/print/patients/{world.patient_id}/consent-form.pdf?consent_id={consent_id}")
    assert "第2版" in text  # build_world recorded version 1
    assert "□一括同意" in text and "■個別同意" in text
    assert "■テスト在宅クリニック" in text and "□テスト訪問看護ステーション" in text
    assert "■連絡" in text and "□日常の療養支援記録" in text
    assert f"□撤回するまで■{flat(format_date(until))}" in text
    assert "紙の取込み" in text
    blank = _text(client, doctor, f"/print/patients/{world.patient_id}/consent-form.pdf")
    assert "□一括同意" in blank and "□個別同意" in blank and "□テスト在宅クリニック" in blank
    assert not re.search("■(一括同意|個別同意|テスト|連絡|撤回するまで)", blank)


def test_withdrawal_form_names_the_consent_version_withdrawn(client, db, keyring, settings, world, as_user):
    grant_consent(db, keyring, world.patient_id, world.physician, settings=settings)
    text = _text(client, as_user(world.physician), f"/print/patients/{world.patient_id}/consent-withdrawal.pdf")
    assert "撤回する同意" in text and "第2版" in text and "一括同意" in text


def test_consent_of_another_patient_is_404(client, db, keyring, settings, world, as_user):
    r = client.get(f"/print/patients/{world.patient_id}/consent-form.pdf?consent_id={uuid.uuid4()}",
                   headers=as_user(world.physician))
    assert r.status_code == 404


def test_signed_consent_form_photographed_is_kept_with_its_consent_version(client, db, world, as_user):
    doctor = as_user(world.physician)
    pdf = printout(client, doctor, f"/print/patients/{world.patient_id}/consent-form.pdf?consent_id={world.consent_id}")
    r = intake(client, doctor, photo(pdf))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["kind"], body["consent_id"], body["consent_version"]) == ("consent_document", str(world.consent_id), 1)
    assert _documents(db, world.consent_id) == 1
    consents = client.get(f"/api/v1/patients/{world.patient_id}/consents", headers=doctor).json()
    assert [d["id"] for d in consents[0]["documents"]] == [body["document_id"]]


def test_a_form_of_a_consent_since_replaced_is_refused_and_nothing_is_kept(client, db, keyring, settings, world,
                                                                          as_user):
    doctor = as_user(world.physician)
    pdf = printout(client, doctor, f"/print/patients/{world.patient_id}/consent-form.pdf?consent_id={world.consent_id}")
    newer = grant_consent(db, keyring, world.patient_id, world.physician, settings=settings)
    r = intake(client, doctor, photo(pdf))
    assert r.status_code == 422 and r.json()["error"] == "consent_not_current"
    assert r.json()["fields"][0]["message_ja"]
    assert _documents(db, world.consent_id) == 0 and _documents(db, newer) == 0


def test_a_blank_consent_form_is_kept_with_the_consent_recorded_from_it(client, db, keyring, settings, world,
                                                                       as_user):
    doctor = as_user(world.physician)
    image = photo(printout(client, doctor, f"/print/patients/{world.patient_id}/consent-form.pdf"))
    r = intake(client, doctor, image)
    assert r.status_code == 422 and r.json()["error"] == "consent_form_unbound"
    recorded = grant_consent(db, keyring, world.patient_id, world.physician, settings=settings)
    r = intake(client, doctor, image)
    assert r.status_code == 201 and r.json()["consent_id"] == str(recorded)
    assert _documents(db, recorded) == 1


def test_signed_withdrawal_form_is_kept_with_the_withdrawn_version_it_names(client, db, keyring, world,
                                                                            as_user):
    doctor = as_user(world.physician)
    # Filing paper needs some patient the uploader may write for: this one's consent is about to end.
    own_patient(db, keyring, world.physician, name="別人 太郎", name_kana="ベツジン タロウ")
    pdf = printout(client, doctor, f"/print/patients/{world.patient_id}/consent-withdrawal.pdf")
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/withdraw",
                    headers=doctor, json={"reason": "本人の申し出", "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = intake(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 201 and r.json()["consent_id"] == str(world.consent_id), r.text
    assert r.json()["sheet"] == "consent-withdrawal" and _documents(db, world.consent_id) == 1


def test_signed_withdrawal_form_before_the_withdrawal_is_recorded_is_refused_and_not_filed(client, db, world,
                                                                                           as_user):
    doctor = as_user(world.physician)
    pdf = printout(client, doctor, f"/print/patients/{world.patient_id}/consent-withdrawal.pdf")
    r = intake(client, doctor, pdf, "scan.pdf")
    assert r.status_code == 422 and r.json()["error"] == "withdrawal_not_recorded", r.text
    assert "撤回を記録" in r.text and _documents(db, world.consent_id) == 0


def test_consent_form_of_a_patient_the_uploader_may_not_access_is_404(client, db, keyring, world, as_user):
    image = photo(printout(client, as_user(world.physician),
                           f"/print/patients/{world.patient_id}/consent-form.pdf?consent_id={world.consent_id}"))
    own_patient(db, keyring, world.outsider, name="別人 太郎", name_kana="ベツジン タロウ")
    r = intake(client, as_user(world.outsider), image)
    assert r.status_code == 404 and _documents(db, world.consent_id) == 0


def test_the_consent_form_offers_every_category_a_consent_can_exclude():
    from renkei.consent.models import CATEGORIES
    from renkei.printing.consent_forms import CATEGORY_LABELS

    assert set(CATEGORY_LABELS) == set(CATEGORIES)
