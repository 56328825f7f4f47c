"""Exact patient lookup through HMAC blind indexes: normalised input, exact match only, strict validation."""

from __future__ import annotations

import pytest

from tests.factories import auth_headers

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
