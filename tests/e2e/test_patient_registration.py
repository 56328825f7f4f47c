"""Registering a patient on a tablet, correcting what the server refused, and editing the registration."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Region, check_page, new_page, sign_in

pytestmark = pytest.mark.slow

THERAPIST = "pt.kato@midori.example"


def test_a_professional_registers_a_patient_fixes_a_refused_field_and_edits_the_registration(
    browser: Browser, region: Region,
):
    page = new_page(browser, region)
    sign_in(page, THERAPIST)
    page.get_by_role("link", name="新しい患者を登録").click()
    expect(page.get_by_role("heading", name="患者の登録")).to_be_visible()
    check_page(page, "patient-register")

    page.get_by_label("氏名", exact=True).fill("森田 ハナ")
    page.get_by_label("氏名（カナ）").fill("もりた はな")
    page.get_by_label("生年月日").fill("2999-01-01")
    page.get_by_label("女性").check()
    page.get_by_label("介護保険被保険者番号").fill("0000555777")
    page.get_by_label("要介護度").select_option("care_1")
    page.get_by_role("button", name="登録する").click()

    # The server's refusal is shown next to the field, and what was typed is still there.
    error = page.locator("#pf-birth_date-err")
    expect(error).to_have_text("生年月日に未来の日付は入力できません")
    expect(page.get_by_label("生年月日")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("氏名（カナ）")).to_have_value("モリタ ハナ")  # kept, as the katakana it is stored as
    check_page(page, "patient-register-errors")

    page.get_by_label("生年月日").fill("1941-02-03")
    page.get_by_role("button", name="登録する").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="森田 ハナ モリタ ハナ")).to_be_visible()
    team = page.locator('[data-live="team"]')
    expect(team).to_contain_text("加藤 翔")
    expect(team).to_contain_text("リハビリ職")

    page.get_by_role("link", name="登録情報を編集").click()
    expect(page.get_by_role("heading", name="登録情報の編集")).to_be_visible()
    check_page(page, "patient-edit")
    page.get_by_label("要介護度").select_option("care_2")
    page.get_by_label("住所").fill("みどり市西町1-1")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}$"))
    registration = page.locator('section[aria-labelledby="reg-title"]')
    expect(registration).to_contain_text("要介護2")
    expect(registration).to_contain_text("みどり市西町1-1")
    assert page.js_errors == []  # type: ignore[attr-defined]
    page.context.close()
