"""Consent pages: history, recording and withdrawal forms (Japanese first), CSRF and re-authentication."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.auth import service as auth_service
from renkei.auth.dependencies import SESSION_COOKIE
from renkei.consent.models import Consent
from renkei.db.types import today_jst
from tests.factories import PASSWORD, auth_headers

TODAY = today_jst().isoformat()
FORM = {"given_by": "patient", "method": "written", "scope": "blanket", "obtained_on": TODAY, "password": PASSWORD}

@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)

def _versions(db, world) -> list[int]:
    return sorted(db.scalars(select(Consent.version).where(Consent.patient_id == world.patient_id)))

def test_consent_page_shows_the_history_in_japanese_and_english(client, world, doctor):
    page = client.get(f"/patients/{world.patient_id}/consents", headers=doctor)
    assert page.status_code == 200
    assert "同意の管理" in page.text and "第1版" in page.text and "一括同意" in page.text and "有効" in page.text
    client.cookies.set("lang", "en")
    english = client.get(f"/patients/{world.patient_id}/consents", headers=doctor)
    assert "Consent history" in english.text and "Version 1" in english.text

def test_recording_through_the_form_adds_a_version(client, db, world, doctor):
    form = FORM | {"excluded_categories": ["acp", "message"], "organisation_ids": [str(world.nursing.id)]}
    r = client.post(f"/patients/{world.patient_id}/consents", headers=doctor, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{world.patient_id}/consents"
    assert _versions(db, world) == [1, 2]
    current = db.scalars(select(Consent).where(Consent.version == 2, Consent.patient_id == world.patient_id)).one()
    assert current.excluded_categories == "acp,message"
    page = client.get(f"/patients/{world.patient_id}/consents", headers=doctor)
    assert "第2版" in page.text and "人生会議（ACP）" in page.text and "テスト訪問看護ステーション" in page.text


def test_form_with_a_wrong_password_is_shown_again_and_the_failure_is_kept(client, db, world, doctor):
    r = client.post(f"/patients/{world.patient_id}/consents", headers=doctor,
                    data=FORM | {"password": "wrong-password-123", "note": "再入力が必要"})
    assert r.status_code == 403
    assert "パスワードが正しくありません" in r.text and "再入力が必要" in r.text
    assert _versions(db, world) == [1]
    denied = db.scalars(select(AuditEvent.reason).where(AuditEvent.patient_id == world.patient_id,
                                                         AuditEvent.decision == "deny")).all()
    assert denied == ["reauth_failed"]


def test_form_problems_are_named_next_to_the_form(client, db, world, doctor):
    r = client.post(f"/patients/{world.patient_id}/consents", headers=doctor, data=FORM | {"given_by": "proxy"})
    assert r.status_code == 422 and "代理人の氏名を入力してください" in r.text
    assert _versions(db, world) == [1]


def test_withdrawing_through_the_form_ends_the_members_own_access(client, db, settings, keyring, world):
    nurse = auth_headers(db, settings, keyring, world.nurse)
    r = client.post(f"/patients/{world.patient_id}/consents/{world.consent_id}/withdraw", headers=nurse,
                    data={"reason": "本人の希望", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    db.expire_all()
    assert db.get(Consent, world.consent_id).withdrawn_at is not None
    assert client.get(f"/patients/{world.patient_id}/consents", headers=nurse).status_code == 404


def test_cookie_session_form_posts_need_the_csrf_token(client, db, settings, keyring, world):
    auth, cookie = auth_service.start_session(db, settings=settings, user=world.physician, kind="web")
    client.cookies.set(SESSION_COOKIE, cookie)
    path = f"/patients/{world.patient_id}/consents"
    assert client.post(path, data=FORM, follow_redirects=False).status_code == 403
    ok = client.post(path, data=FORM | {"csrf_token": auth.csrf_token}, follow_redirects=False)
    assert ok.status_code == 303
    assert _versions(db, world) == [1, 2]


def test_a_withdrawal_refused_for_a_wrong_password_keeps_the_reason_and_date(client, db, world, doctor):
    wrong = "wrong-password-typed-7"
    on = today_jst().isoformat()
    r = client.post(f"/patients/{world.patient_id}/consents/{world.consent_id}/withdraw", headers=doctor,
                    data={"reason": "家族会議で撤回を決めた", "withdrawn_on": on, "password": wrong})
    assert r.status_code == 403
    assert "家族会議で撤回を決めた</textarea>" in r.text and f'value="{on}"' in r.text
    assert "<details open>" in r.text, "the withdrawal form is shown open again"
    assert 'id="w-password-err"' in r.text and "パスワードが正しくありません" in r.text
    assert wrong not in r.text
    assert db.get(Consent, world.consent_id).withdrawn_at is None


def test_form_problems_sit_next_to_their_fields_without_json_pointers(client, world, doctor):
    r = client.post(f"/patients/{world.patient_id}/consents", headers=doctor,
                    data=FORM | {"given_by": "proxy", "valid_until": "2001-01-01"})
    assert r.status_code == 422
    assert 'id="c-proxy-err"' in r.text and 'id="c-rel-err"' in r.text and 'id="c-until-err"' in r.text
    assert 'aria-describedby="c-proxy-err"' in r.text
    assert "<code>/" not in r.text and 'href="#c-proxy"' in r.text
    client.cookies.set("lang", "en")
    english = client.post(f"/patients/{world.patient_id}/consents", headers=doctor,
                          data=FORM | {"given_by": "proxy"})
    assert "Enter the proxy&#39;s name" in english.text or "Enter the proxy's name" in english.text
