"""Exact patient lookup through HMAC blind indexes: normalised input, exact match only, strict validation."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.db.types import today_jst
from renkei.patients import service as patient_service
from renkei.patients.service import age_on
from tests.factories import PASSWORD, auth_headers, make_org, make_user

LOOKUP = "/api/v1/patients/lookup"
BIRTH = "1938-04-02"  # world patient: 山田 花子 / ヤマダ ハナコ, 介護 0000123456, 医療 39123456


@pytest.fixture
def headers(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def _ids(client, headers, body) -> list[str]:
    r = client.post(LOOKUP, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()]


@pytest.mark.parametrize("kana", [
    "ヤマダ ハナコ",
    "やまだ はなこ",
    "ヤマダハナコ",
    "やまだはなこ",
    "ﾔﾏﾀﾞ ﾊﾅｺ",
    "ﾔﾏﾀﾞﾊﾅｺ",
    "ヤマダ\u3000ハナコ",
    "  ヤマダ   ハナコ  ",
    "ヤマだ はナコ",
])
def test_kana_and_birth_date_lookup_ignores_script_width_and_spaces(client, headers, world, kana):
    assert _ids(client, headers, {"name_kana": kana, "birth_date": BIRTH}) == [str(world.patient_id)]


@pytest.mark.parametrize("number", [
    "0000123456",
    "００００１２３４５６",
    "0000-123-456",
    "００００－１２３－４５６",
    "0000ー123ー456",
    "0000―123―456",
    "0000 123 456",
    "39123456",
    "３９１２３４５６",
    "39-123456",
])
def test_insurance_number_lookup_accepts_full_width_digits_and_hyphens(client, headers, world, number):
    assert _ids(client, headers, {"insurance_number": number}) == [str(world.patient_id)]


@pytest.mark.parametrize("body", [
    {"name_kana": "ヤマダ", "birth_date": BIRTH},
    {"name_kana": "ヤマダ ハナ", "birth_date": BIRTH},
    {"name_kana": "ヤマダ ハナコX", "birth_date": BIRTH},
    {"name_kana": "ヤマダ ハナコ", "birth_date": "1938-04-03"},
    {"name_kana": "山田 花子", "birth_date": BIRTH},
    {"insurance_number": "000012345"},
    {"insurance_number": "00001234567"},
    {"insurance_number": "123456"},
    {"insurance_number": "3912345"},
], ids=lambda b: "|".join(str(v) for v in b.values()))
def test_lookup_never_matches_partially(client, headers, body):
    assert _ids(client, headers, body) == []


def test_lookup_result_tells_an_outsider_the_patient_is_not_on_their_team(client, db, settings, keyring, world):
    outsider = auth_headers(db, settings, keyring, world.outsider)
    r = client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=outsider)
    assert r.status_code == 200
    assert [(m["id"], m["on_my_team"]) for m in r.json()] == [(str(world.patient_id), False)]
    mine = client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=auth_headers(
        db, settings, keyring, world.nurse))
    assert [m["on_my_team"] for m in mine.json()] == [True]
    assert r.headers["cache-control"] == "no-store"


def test_lookup_needs_sign_in(client):
    r = client.post(LOOKUP, json={"insurance_number": "0000123456"})
    assert r.status_code == 401
    assert "山田" not in r.text


@pytest.mark.parametrize("body", [
    {"name_kana": "ヤマダ ハナコ"},
    {"birth_date": BIRTH},
    {},
    {"name_kana": "ヤマダ ハナコ", "birth_date": BIRTH, "insurance_number": "0000123456"},
    {"birth_date": BIRTH, "insurance_number": "0000123456"},
], ids=["kana-only", "birth-only", "neither", "both", "birth-and-number"])
def test_lookup_needs_kana_with_birth_date_or_an_insurance_number_but_not_both(client, headers, body):
    r = client.post(LOOKUP, json=body, headers=headers)
    assert r.status_code == 422
    problem = r.json()
    assert problem["error"] == "invalid_input"
    assert problem["fields"], "the 422 must explain which fields are wrong"
    text = " ".join(f["message_en"] for f in problem["fields"])
    assert "name_kana" in text and "birth_date" in text and "insurance_number" in text


@pytest.mark.parametrize(("body", "missing"), [
    ({"name_kana": "ヤマダ ハナコ"}, "/birth_date"),
    ({"birth_date": BIRTH}, "/name_kana"),
])
def test_lookup_with_half_of_the_name_pair_points_at_the_missing_field(client, headers, body, missing):
    r = client.post(LOOKUP, json=body, headers=headers)
    assert r.status_code == 422
    assert missing in [f["path"] for f in r.json()["fields"]]


def test_lookup_rejects_unknown_fields_and_overlong_values(client, headers):
    r = client.post(LOOKUP, json={"insurance_number": "0000123456", "name": "山田"}, headers=headers)
    assert r.status_code == 422 and "/name" in [f["path"] for f in r.json()["fields"]]
    r = client.post(LOOKUP, json={"insurance_number": "1" * 41}, headers=headers)
    assert r.status_code == 422 and "/insurance_number" in [f["path"] for f in r.json()["fields"]]
    assert "1" * 41 not in r.text


# -- who may look up, what they get back, how often ------------------------------------------------


def _audit(db, actor_id) -> list[tuple[str, str, str, object]]:
    db.expire_all()
    rows = db.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == actor_id).order_by(AuditEvent.seq))
    return [(r.action, r.decision, r.reason, r.patient_id) for r in rows]


@pytest.mark.parametrize(("profession", "role"), [("coordinator", "member"), ("coordinator", "region_admin"),
                                                  ("care_manager", "region_admin")])
def test_lookup_is_refused_to_accounts_that_neither_break_the_glass_nor_register_patients(
    client, db, settings, keyring, world, profession, role,
):
    user = make_user(db, make_org(db, "みどり市役所", "municipality"), profession=profession, role=role,
                     keyring=keyring)
    headers = auth_headers(db, settings, keyring, user)
    r = client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert str(world.patient_id) not in r.text and "山田" not in r.text
    assert _audit(db, user.id) == [("lookup", "deny", "profession_not_allowed", None)]


@pytest.mark.parametrize("profession", ["care_manager", "pharmacist", "care_worker", "msw"])
def test_a_duplicate_check_before_registering_learns_only_the_id_and_the_team_flag(
    client, db, settings, keyring, world, profession,
):
    user = make_user(db, make_org(db, "よその事業所", "care_management_office"), profession=profession)
    headers = auth_headers(db, settings, keyring, user)
    for body in ({"insurance_number": "0000123456"}, {"name_kana": "ヤマダ ハナコ", "birth_date": BIRTH}):
        r = client.post(LOOKUP, json=body, headers=headers)
        assert r.status_code == 200
        assert r.json() == [{"id": str(world.patient_id), "on_my_team": False, "sex": None, "age_band": None}]


def test_an_emergency_lookup_by_insurance_number_confirms_sex_and_age_band_but_never_the_name_or_birth_date(
    client, db, settings, keyring, world,
):
    er = make_user(db, make_org(db, "救命救急センター", "hospital"), profession="physician")
    headers = auth_headers(db, settings, keyring, er)
    r = client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=headers)
    assert r.status_code == 200
    band = age_on(date(1938, 4, 2), today_jst()) // 10 * 10
    assert r.json() == [{"id": str(world.patient_id), "on_my_team": False, "sex": "female", "age_band": band}]
    for secret in ("山田", "ヤマダ", "1938", "みどり市", "39123456"):
        assert secret not in r.text


@pytest.mark.parametrize("number", ["1234", "12345", "12-34-5", "１２３４５", "0000*12345", "12 34"])
def test_insurance_numbers_must_be_given_whole(client, headers, number):
    r = client.post(LOOKUP, json={"insurance_number": number}, headers=headers)
    assert r.status_code == 422
    assert [f["path"] for f in r.json()["fields"]] == ["/insurance_number"]


def test_lookups_are_throttled_per_account_and_the_refusal_is_audited(
    client, db, settings, keyring, world, monkeypatch,
):
    monkeypatch.setattr(patient_service, "LOOKUP_LIMIT_PER_USER", 3)
    er = make_user(db, make_org(db, "救命救急センター", "hospital"), profession="physician")
    headers = auth_headers(db, settings, keyring, er)
    statuses = [client.post(LOOKUP, json={"insurance_number": f"{123400 + n:010d}"},
                            headers=headers).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Even the right number is refused until the window ends: a sweep cannot just keep going.
    blocked = client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=headers)
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    assert str(world.patient_id) not in blocked.text
    assert [row[2] for row in _audit(db, er.id)] == ["no_match"] * 3 + ["lookup_throttled"] * 2
    # Another professional at the same address is not held back by this account's sweep.
    nurse = auth_headers(db, settings, keyring, world.nurse)
    assert client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=nurse).status_code == 200


def test_lookups_are_throttled_per_client_address_across_accounts(
    client, db, settings, keyring, world, monkeypatch,
):
    monkeypatch.setattr(patient_service, "LOOKUP_LIMIT_PER_ADDRESS", 4)
    hospital = make_org(db, "救命救急センター", "hospital")
    nurses = [make_user(db, hospital, profession="nurse") for _ in range(5)]
    accounts = [auth_headers(db, settings, keyring, nurse) for nurse in nurses]
    statuses = [client.post(LOOKUP, json={"insurance_number": "0000123456"}, headers=h).status_code
                for h in accounts]
    assert statuses == [200, 200, 200, 200, 429]


@pytest.mark.parametrize("profession", ["physician", "nurse"])
def test_a_patient_who_withdrew_consent_is_still_found_for_emergency_access(
    client, db, settings, keyring, world, profession,
):
    # Emergency disclosure without consent is lawful to protect life (APPI art. 27(1)(ii)): those who may
    # break the glass find the patient, with the same minimal answer as ever.
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/withdraw",
                    headers=auth_headers(db, settings, keyring, world.physician),
                    json={"reason": "本人の申し出", "password": PASSWORD})
    assert r.status_code == 200, r.text
    er = make_user(db, make_org(db, "救命救急センター", "hospital"), profession=profession)
    outside = client.post(LOOKUP, json={"insurance_number": "0000123456"},
                          headers=auth_headers(db, settings, keyring, er))
    assert outside.status_code == 200
    assert [sorted(m) for m in outside.json()] == [["age_band", "id", "on_my_team", "sex"]]
    assert outside.json()[0]["id"] == str(world.patient_id) and "山田" not in outside.text
    assert _audit(db, er.id) == [("lookup", "allow", "exact_match", world.patient_id)]


def test_a_patient_who_withdrew_consent_is_hidden_from_other_lookups_but_not_from_their_team(
    client, db, settings, keyring, world,
):
    r = client.post(f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/withdraw",
                    headers=auth_headers(db, settings, keyring, world.physician),
                    json={"reason": "本人の申し出", "password": PASSWORD})
    assert r.status_code == 200, r.text
    other_office = make_user(db, make_org(db, "ひがし居宅", "care_management_office"), profession="care_manager")
    outside = client.post(LOOKUP, json={"insurance_number": "0000123456"},
                          headers=auth_headers(db, settings, keyring, other_office))
    assert outside.status_code == 200 and outside.json() == []
    # The withheld match is still on the patient's access log, with the patient's id.
    assert _audit(db, other_office.id) == [("lookup", "deny", "consent_withdrawn", world.patient_id)]
    team = client.post(LOOKUP, json={"insurance_number": "0000123456"},
                       headers=auth_headers(db, settings, keyring, world.nurse))
    assert [(m["id"], m["on_my_team"]) for m in team.json()] == [(str(world.patient_id), True)]