"""Registering a patient and editing the registration through the tablet pages (cookie sessions)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select

from renkei.patients.models import CareTeamMembership, Patient
from tests.directory.support import audit_form, csrf_of
from tests.factories import auth_headers, make_org, make_user

FIELDS = ("name", "name_kana", "birth_date", "address", "phone", "care_insurance_number",
          "health_insurance_number", "care_level", "care_level_valid_from", "care_level_valid_until",
          "team_role")


def _form(**overrides: str) -> dict[str, str]:
    form = {"name": "新井 春子", "name_kana": "アライ ハルコ", "birth_date": "1936-05-05", "sex": "female",
            "address": "みどり市東町3-4-5", "phone": "0120-111-222", "care_insurance_number": "0000765432",
            "health_insurance_number": "39765432", "care_level": "care_3",
            "care_level_valid_from": "2026-04-01", "care_level_valid_until": "2027-03-31",
            "team_role": "visiting_nurse"}
    form.update(overrides)
    return form


def _patients(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Patient)) or 0


def _lookup(client, headers, kana: str, birth: str = "1936-05-05") -> list[dict]:
    r = client.post("/api/v1/patients/lookup", headers=headers, json={"name_kana": kana, "birth_date": birth})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_patient_list_offers_registration_to_those_who_may_register(browse, db, keyring, world):
    assert 'href="/patients/new"' in browse(world.nurse).get("/patients").text
    coordinator = make_user(db, make_org(db, "みどり市役所", "municipality"), profession="coordinator")
    assert 'href="/patients/new"' not in browse(coordinator).get("/patients").text
    assert browse(coordinator).get("/patients/new").status_code == 403


def test_the_form_labels_every_field_in_japanese_with_kana_and_insurance_hints(browse, world):
    page = browse(world.nurse).get("/patients/new")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    audit = audit_form(page.text)
    assert audit.unlabelled() == []
    named = {f.get("name") for f in audit.fields}
    assert set(FIELDS) | {"sex"} <= named
    for text in ("患者の登録", "氏名（カナ）", "生年月日", "介護保険被保険者番号", "カタカナで入力してください",
                 "10桁", "あなたのチームでの役割"):
        assert text in page.text, text
    assert '<option value="visiting_nurse" selected>' in page.text, "the role follows the profession"


def test_registering_through_the_form_makes_me_the_first_team_member(
    client, browse, db, settings, keyring, world,
):
    nurse = browse(world.nurse)
    page = nurse.get("/patients/new")
    r = nurse.post("/patients/new", data={**_form(), "csrf_token": csrf_of(page.text)},
                   follow_redirects=False)
    assert r.status_code == 303
    patient_id = uuid.UUID(r.headers["location"].rsplit("/", 1)[1])
    team = db.scalars(select(CareTeamMembership).where(CareTeamMembership.patient_id == patient_id)).all()
    assert [(m.user_id, m.team_role) for m in team] == [(world.nurse.id, "visiting_nurse")]
    shown = nurse.get(r.headers["location"]).text
    assert "新井 春子" in shown and "アライ ハルコ" in shown and "要介護3" in shown
    assert "新井".encode() not in db.get(Patient, patient_id).identity_ct, "the name is not in clear"
    found = _lookup(client, auth_headers(db, settings, keyring, world.nurse), "あらい はるこ")
    assert [m["id"] for m in found] == [str(patient_id)]


def test_problems_are_shown_next_to_their_fields_and_what_was_typed_is_kept(browse, db, world):
    nurse = browse(world.nurse)
    page = nurse.get("/patients/new")
    before = _patients(db)
    bad = _form(name="", birth_date="2999-01-01", phone="電話", care_level_valid_until="2026-01-01")
    r = nurse.post("/patients/new", data={**bad, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 422
    for field in ("name", "birth_date", "phone", "care_level_valid_until"):
        assert f'id="pf-{field}-err"' in r.text, field
        assert f'aria-describedby="pf-{field}-err' in r.text, field
    assert 'id="pf-name_kana-err"' not in r.text
    assert re.search(r'id="pf-birth_date-err">生年月日に未来の日付は入力できません', r.text)
    assert re.search(r'id="pf-care_level_valid_until-err">有効期間の終わりが始まりより前になっています', r.text)
    assert 'value="アライ ハルコ"' in r.text and 'value="みどり市東町3-4-5"' in r.text
    assert '<option value="care_3" selected>' in r.text and 'value="female" checked' in r.text
    assert 'href="#pf-name"' in r.text, "the summary links to the field"
    assert _patients(db) == before


def test_registration_without_the_csrf_token_is_refused(browse, db, world):
    before = _patients(db)
    r = browse(world.nurse).post("/patients/new", data=_form(), follow_redirects=False)
    assert r.status_code == 403
    assert _patients(db) == before


def test_editing_re_encrypts_the_registration_and_the_lookup_follows_the_new_kana(
    client, browse, db, settings, keyring, world,
):
    doctor = browse(world.physician)
    url = f"/patients/{world.patient_id}/edit"
    assert f'href="{url}"' in doctor.get(f"/patients/{world.patient_id}").text
    page = doctor.get(url)
    assert page.status_code == 200
    assert 'value="ヤマダ ハナコ"' in page.text and 'value="1938-04-02"' in page.text
    assert 'name="team_role"' not in page.text
    before = db.get(Patient, world.patient_id).identity_ct
    form = _form(name="山田 華子", name_kana="ヤマダ ハナコ", birth_date="1938-04-02", care_level="care_4")
    del form["team_role"]
    form["name_kana"] = "ヤマダ ハナ"
    r = doctor.post(url, data={**form, "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{world.patient_id}"
    db.expire_all()
    assert db.get(Patient, world.patient_id).identity_ct != before
    assert "山田 華子" in doctor.get(r.headers["location"]).text
    headers = auth_headers(db, settings, keyring, world.physician)
    assert _lookup(client, headers, "ヤマダ ハナコ", "1938-04-02") == []
    assert [m["id"] for m in _lookup(client, headers, "ヤマダ ハナ", "1938-04-02")] == [str(world.patient_id)]


def test_the_edit_form_of_a_patient_outside_my_teams_is_404_without_their_data(browse, db, world):
    outsider = browse(world.outsider)
    url = f"/patients/{world.patient_id}/edit"
    page = outsider.get(url)
    assert page.status_code == 404 and "山田" not in page.text and "ヤマダ" not in page.text
    token = csrf_of(outsider.get("/patients").text)
    for form in (_form(), _form(name="")):
        del form["team_role"]
        r = outsider.post(url, data={**form, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 404 and "山田" not in r.text and "新井" not in r.text
