"""The tablet app in a real browser: the issue's scenario, errors next to fields, retries, live updates,
break-the-glass, consent with a tablet signature, idle lock, and the layout checks of every page."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.e2e.conftest import PASSWORD, Region, check_page, new_page, sign_in

pytestmark = pytest.mark.slow

NURSE = "ns.nakamura@midori.example"
COORDINATOR = "msw.suzuki@midori.example"
CARE_MANAGER = "cm.yamaguchi@midori.example"
PHYSICIAN = "dr.sato@midori.example"
ER_PHYSICIAN = "dr.er@midori.example"
NURSING_ADMIN = "admin.nursing@midori.example"
REGION_ADMIN = "region.admin@midori.example"


@pytest.fixture(scope="module")
def patient(region: Region) -> dict:
    return region.patient_with(NURSE, COORDINATOR, CARE_MANAGER, PHYSICIAN)


@pytest.fixture(scope="module")
def wound_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "wound.png"
    Image.new("RGB", (96, 64), (190, 90, 80)).save(path)
    return path


def image_loaded(page: Page, image: Locator) -> bool:
    """The image decoded with real pixels (a failed download shows as a broken, zero-width image)."""
    image.scroll_into_view_if_needed()
    for _ in range(50):
        if page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle()):
            return True
        page.wait_for_timeout(100)
    return False


def open_timeline(page: Page, patient: dict) -> None:
    page.goto("/patients")
    page.get_by_role("link", name=re.compile(patient["name"])).click()
    expect(page.locator("#timeline-title")).to_be_visible()


def test_the_issue_scenario_care_note_with_photo_then_a_discharge_sheet_acknowledged_live(
    browser: Browser, region: Region, patient: dict, wound_photo: Path,
):
    today = date.today().isoformat()
    # A visiting nurse posts a care note with a wound photo.
    nurse = new_page(browser, region)
    sign_in(nurse, NURSE)
    check_page(nurse, "patients")
    open_timeline(nurse, patient)
    check_page(nurse, "timeline")
    nurse.get_by_role("link", name=re.compile("新しい記録を書く")).click()
    check_page(nurse, "entry-choose")
    nurse.get_by_role("link", name=re.compile("療養支援記録")).click()
    expect(nurse.locator("#entry-form")).to_be_visible()
    check_page(nurse, "care-note-form")
    nurse.get_by_label("血圧（収縮期） mmHg").fill("128")
    nurse.get_by_label("脈拍 回/分").fill("72")
    nurse.locator('[data-field="/skin/pressure_ulcer"]').get_by_text("あり").click()
    nurse.get_by_label("部位").fill("仙骨部")
    nurse.locator('input[data-upload="/skin/photo_attachment_ids"]').set_input_files(str(wound_photo))
    expect(nurse.locator(".photo-field figcaption").first).to_have_text("添付しました")
    nurse.get_by_label("観察・支援内容").fill("仙骨部に発赤あり。体位変換を2時間ごとに実施。")
    nurse.get_by_role("button", name="記録を送信").click()
    nurse.wait_for_url(re.compile(r"/timeline\?done=posted"))
    note = nurse.locator("#timeline-list li.kind-care-note").first
    expect(note).to_contain_text("療養支援記録")
    note.locator("a").click()
    expect(nurse.get_by_role("heading", name="療養支援記録")).to_be_visible()
    expect(nurse.get_by_text("仙骨部に発赤あり")).to_be_visible()
    photo = nurse.locator(".photos img").first
    expect(photo).to_be_visible()
    assert image_loaded(nurse, photo)
    check_page(nurse, "entry")

    # The care manager has the patient's page open on her tablet.
    care_manager = new_page(browser, region, width=768, height=1024)
    sign_in(care_manager, CARE_MANAGER)
    open_timeline(care_manager, patient)
    expect(care_manager.locator("body")).to_have_attribute("data-live", "connected", timeout=15000)
    assert care_manager.locator("li.kind-discharge-info").count() == 0

    # The hospital's discharge coordinator, in another browser context, sends the discharge sheet.
    coordinator = new_page(browser, region)
    sign_in(coordinator, COORDINATOR)
    coordinator.goto(f"/patients/{patient['id']}/entries/new?sheet=discharge-info")
    check_page(coordinator, "discharge-form")
    contact = coordinator.locator('[data-repeat="/contact_log"] [data-item]').first
    contact.get_by_label("聞き取り日").fill(today)
    contact.get_by_label("情報提供を受けた職種").select_option("care_manager")
    contact.get_by_label("氏名").fill("山口 直美")
    contact.locator('[data-field="/contact_log/0/conference_attended"]').get_by_text("はい").click()
    coordinator.locator("label.choice", has_text="山口 直美").click()
    # Validation errors appear next to the fields, in Japanese: the date written is missing.
    coordinator.get_by_role("button", name="記録を送信").click()
    record_date = coordinator.locator('[data-field="/header/record_date"]')
    expect(record_date.locator(".field-error")).to_have_text("必須項目です")
    expect(record_date.locator("input")).to_have_attribute("aria-invalid", "true")
    expect(coordinator.locator("#error-summary")).to_be_visible()
    check_page(coordinator, "discharge-form-errors")
    record_date.locator("input").fill(today)
    coordinator.get_by_role("button", name="記録を送信").click()
    coordinator.wait_for_url(re.compile(r"/timeline\?done=posted"))

    # The care manager's open page shows it without a reload, with a toast, and she acknowledges it.
    sheet_row = care_manager.locator("#timeline-list li.kind-discharge-info")
    expect(sheet_row).to_be_visible(timeout=15000)
    expect(sheet_row).to_contain_text("受領確認待ち")
    expect(care_manager.locator(".toast").first).to_contain_text("退院・退所情報記録書")
    check_page(care_manager, "timeline-live")
    sheet_row.locator("a").click()
    acknowledge = care_manager.get_by_role("button", name=re.compile("受け取りました"))

    # The coordinator watches her sheet's receipt state.
    coordinator.locator("#timeline-list li.kind-discharge-info a").first.click()
    expect(coordinator.locator('[data-ack-state="waiting"]')).to_be_visible()
    expect(coordinator.locator("body")).to_have_attribute("data-live", "connected", timeout=15000)

    acknowledge.click()
    expect(care_manager.locator('[data-ack-state="acknowledged"]')).to_be_visible()
    # ...and sees the acknowledgement arrive live.
    expect(coordinator.locator('[data-ack-state="acknowledged"]')).to_be_visible(timeout=15000)
    expect(coordinator.locator('[data-live="receipts"]')).to_contain_text("山口 直美")
    check_page(coordinator, "entry-acknowledged")

    for page in (nurse, care_manager, coordinator):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]
        page.context.close()


def test_a_post_whose_answer_was_lost_is_retried_with_the_same_key_and_stored_once(
    browser: Browser, region: Region, patient: dict,
):
    nurse = new_page(browser, region)
    sign_in(nurse, NURSE)
    nurse.goto(f"/patients/{patient['id']}/entries/new?sheet=message")
    text = "明日の訪問は15時に変更します（再送テスト）"
    nurse.get_by_label("本文").fill(text)
    keys: list[str] = []
    state = {"calls": 0}

    def drop_first_answer(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key", ""))
        state["calls"] += 1
        if state["calls"] == 1:
            route.fetch()  # the server stores the entry...
            route.abort("internetdisconnected")  # ...but the tablet never hears back
            return
        route.continue_()

    nurse.route(re.compile(r".*/api/v1/patients/[^/]+/entries$"), drop_first_answer)
    nurse.get_by_role("button", name="記録を送信").click()
    expect(nurse.locator("#net-banner")).to_be_visible()
    expect(nurse.get_by_label("本文")).to_have_value(text)
    nurse.wait_for_url(re.compile(r"/timeline\?done=posted"), timeout=20000)
    assert len(keys) >= 2 and len(set(keys)) == 1 and keys[0]
    expect(nurse.locator("#timeline-list li", has_text="連絡")).not_to_have_count(0)
    ids = nurse.evaluate("""async (pid) => {
        const r = await fetch('/api/v1/patients/' + pid + '/timeline?kind=message&limit=100');
        return (await r.json()).items.filter(e => e.data.text.includes('再送テスト')).map(e => e.id);
    }""", patient["id"])
    assert len(ids) == 1
    nurse.context.close()


def test_an_offline_tablet_keeps_the_form_and_sends_it_when_the_network_is_back(
    browser: Browser, region: Region, patient: dict,
):
    nurse = new_page(browser, region)
    sign_in(nurse, NURSE)
    nurse.goto(f"/patients/{patient['id']}/entries/new?sheet=message")
    nurse.get_by_label("本文").fill("電波の届かない場所からの連絡")
    nurse.context.set_offline(True)
    nurse.get_by_role("button", name="記録を送信").click()
    expect(nurse.locator("#net-banner")).to_be_visible()
    expect(nurse.get_by_label("本文")).to_have_value("電波の届かない場所からの連絡")
    check_page(nurse, "offline-banner")
    nurse.context.set_offline(False)
    nurse.wait_for_url(re.compile(r"/timeline\?done=posted"), timeout=20000)
    nurse.context.close()


def test_an_urgent_entry_is_unmistakable_on_a_colleagues_open_patient_list(
    browser: Browser, region: Region, patient: dict,
):
    physician = new_page(browser, region)
    sign_in(physician, PHYSICIAN)
    physician.goto("/patients")
    expect(physician.locator("body")).to_have_attribute("data-live", "connected", timeout=15000)
    nurse = new_page(browser, region)
    sign_in(nurse, NURSE)
    nurse.goto(f"/patients/{patient['id']}/entries/new?sheet=message")
    nurse.get_by_label("本文").fill("呼吸状態が悪化しています。至急往診をお願いします。")
    nurse.get_by_role("switch").check()
    nurse.get_by_role("button", name="記録を送信").click()
    nurse.wait_for_url(re.compile(r"/timeline"))
    toast = physician.locator(".toast.urgent").first
    expect(toast).to_be_visible(timeout=15000)
    expect(toast).to_have_attribute("role", "alert")
    expect(toast).to_contain_text("至急")
    row = physician.locator(f'li[data-patient-id="{patient["id"]}"]')
    expect(row.locator(".badge.urgent")).to_be_visible()
    expect(physician.locator("#notif-count")).to_be_visible()
    check_page(physician, "patients-urgent")
    physician.context.close()
    nurse.context.close()


def test_break_the_glass_lookup_reason_confirmation_and_a_banner_while_it_lasts(
    browser: Browser, region: Region, patient: dict,
):
    er = new_page(browser, region)
    sign_in(er, ER_PHYSICIAN)
    er.goto("/emergency")
    check_page(er, "emergency-lookup")
    er.get_by_label("氏名（カナ）").fill(patient["name_kana"])
    er.get_by_label("生年月日").fill(patient["birth_date"])
    er.get_by_role("button", name="検索").click()
    # The match is shown without its name (sex and age band only) until access is granted.
    result = er.locator("form[action$='/break-glass']").first
    result.get_by_label("状況の説明").fill("自宅で意識消失、救急搬送")
    result.get_by_label("パスワード").fill(PASSWORD)
    check_page(er, "emergency-reason")
    result.get_by_role("button", name="緊急時アクセスを開始する").click()
    # The confirmation is required before anything is granted.
    assert er.locator("#bg-banner").count() == 0
    result.get_by_text("救急対応のために必要であることを確認しました").click()
    result.get_by_role("button", name="緊急時アクセスを開始する").click()
    expect(er.get_by_role("heading", name="緊急時アクセスを開始しました")).to_be_visible()
    expect(er.locator("#bg-banner")).to_be_visible()
    er.get_by_role("link", name="緊急時情報を開く").first.click()
    expect(er.get_by_text("緊急時アクセスで閲覧しています")).to_be_visible()
    expect(er.locator("#summary-title")).to_be_visible()
    assert patient["name"] not in er.content()
    check_page(er, "emergency-view")
    er.goto("/patients")
    expect(er.locator("#bg-banner")).to_be_visible()
    er.context.close()

    admin = new_page(browser, region)
    sign_in(admin, REGION_ADMIN, otp=True)
    admin.goto("/admin/break-glass")
    expect(admin.get_by_text("自宅で意識消失、救急搬送")).to_be_visible()
    check_page(admin, "break-glass-review")
    admin.goto(f"/admin/audit?patient_id={patient['id']}")
    check_page(admin, "audit-search")
    admin.context.close()


def test_consent_recorded_with_a_signature_drawn_on_the_tablet(browser: Browser, region: Region, patient: dict):
    page = new_page(browser, region, width=768, height=1024)
    sign_in(page, CARE_MANAGER)
    page.goto(f"/patients/{patient['id']}/consents")
    form = page.locator("form[data-consent-form]")
    form.get_by_text("タブレットへの署名", exact=True).click()
    form.get_by_label("同意日", exact=True).fill(date.today().isoformat())
    form.get_by_label("パスワード").fill(PASSWORD)
    form.get_by_role("button", name="同意を記録する").click()
    expect(page.locator("#signature-error")).to_be_visible()
    pad = page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 30, box["y"] + 60)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 30 + step * 25, box["y"] + 60 + (step % 3) * 20)
    page.mouse.up()
    check_page(page, "consent-form")
    form.get_by_role("button", name="同意を記録する").click()
    page.wait_for_url(re.compile(r"/consents\?done=consent_recorded"))
    newest = page.locator("section[aria-labelledby^='consent-']").first
    expect(newest).to_contain_text("タブレットへの署名")
    signature = newest.locator(".photos img")
    expect(signature).to_be_visible()
    assert image_loaded(page, signature)
    page.context.close()


def test_team_and_access_log_pages_and_adding_a_member(browser: Browser, region: Region, patient: dict):
    page = new_page(browser, region)
    sign_in(page, PHYSICIAN)
    page.goto(f"/patients/{patient['id']}")
    check_page(page, "patient-team")
    page.get_by_label("追加する職員").select_option(label="山崎 亮（歯科医師）")
    page.get_by_label("チームでの役割").select_option("dentist")
    page.get_by_role("button", name="メンバーを追加").click()
    expect(page.locator('[data-live="team"]')).to_contain_text("山崎 亮")
    page.goto(f"/patients/{patient['id']}/access-log")
    check_page(page, "access-log")
    page.context.close()


def test_staff_administration_pages(browser: Browser, region: Region):
    admin = new_page(browser, region)
    sign_in(admin, NURSING_ADMIN, otp=True)
    admin.goto("/admin/staff")
    expect(admin.get_by_role("heading", name=re.compile("職員管理"))).to_be_visible()
    check_page(admin, "admin-staff")
    admin.locator("a", has_text="編集").first.click()
    check_page(admin, "admin-staff-edit")
    admin.context.close()


def test_sign_in_page_and_an_idle_tablet_signs_itself_out_leaving_nothing_in_storage(
    browser: Browser, region: Region,
):
    page = new_page(browser, region, width=390, height=844)
    page.goto("/login")
    check_page(page, "login")
    page.clock.install()
    sign_in(page, NURSE)
    expect(page.locator("#patient-list")).to_be_visible()
    page.clock.fast_forward("29:00")
    expect(page.locator("#idle-lock")).to_be_visible()
    page.clock.fast_forward("01:00")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("#patient-list")).to_have_count(0)
    stored = page.evaluate("() => [localStorage.length, Object.keys(sessionStorage)]")
    assert stored[0] == 0 and set(stored[1]) <= {"renkei.seq"}
    page.goto("/patients")
    assert "/login" in page.url
    page.context.close()


def test_a_draft_saves_itself_while_typing_and_is_resumed_later(browser: Browser, region: Region, patient: dict):
    nurse = new_page(browser, region)
    sign_in(nurse, NURSE)
    nurse.goto(f"/patients/{patient['id']}/entries/new?sheet=message")
    nurse.get_by_label("本文").fill("下書き: 夕方に再訪問の予定")
    expect(nurse.locator("#save-state")).to_contain_text("下書きを保存しました", timeout=15000)
    nurse.goto(f"/patients/{patient['id']}/entries/new")
    nurse.get_by_role("link", name=re.compile("連絡")).last.click()
    expect(nurse.get_by_label("本文")).to_have_value("下書き: 夕方に再訪問の予定")
    nurse.get_by_role("button", name="記録を送信").click()
    nurse.wait_for_url(re.compile(r"/timeline\?done=posted"))
    nurse.goto(f"/patients/{patient['id']}/entries/new")
    expect(nurse.get_by_role("heading", name="自分の下書き")).to_have_count(0)
    nurse.context.close()
