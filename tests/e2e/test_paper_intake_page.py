"""Paper intake on a tablet in a real browser: a form printed for a patient, filled by hand and photographed,
filed on the right patient (or refused with a clear Japanese error), then transcribed from the queue."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from renkei.printing.render import pdf_page_png
from tests.e2e.conftest import Region, check_page, new_page, sign_in

pytestmark = pytest.mark.slow

NURSE = "ns.nakamura@midori.example"
PHYSICIAN = "dr.sato@midori.example"


def _jpeg(pdf: bytes) -> bytes:
    """The first page as a phone photo: rasterised, slightly rotated, JPEG."""
    image = Image.open(io.BytesIO(pdf_page_png(pdf, 0, dpi=150))).convert("RGB").rotate(
        1.5, expand=True, fillcolor="white")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_photographed_paper_form_is_filed_then_transcribed_from_the_queue(browser: Browser, region: Region):
    patient = region.patient_with(NURSE, PHYSICIAN)
    doctor = new_page(browser, region)
    sign_in(doctor, PHYSICIAN)
    printed = doctor.request.get(f"/print/blank/care-note.pdf?patient_id={patient['id']}")
    assert printed.status == 200
    photo = _jpeg(printed.body())

    nurse = new_page(browser, region, width=768, height=1024)
    sign_in(nurse, NURSE)
    nurse.get_by_role("link", name="紙の取込み").click()
    expect(nurse.get_by_role("heading", name="紙の取込み")).to_be_visible()
    check_page(nurse, "paper-intake")

    # A photo without a code: a clear error in Japanese, nothing filed.
    nurse.locator("#pi-file").set_input_files(files=[{"name": "blank.png", "mimeType": "image/png",
                                                      "buffer": _blank_png()}])
    expect(nurse.locator("#pi-chosen")).to_contain_text("blank.png")
    nurse.get_by_role("button", name="取り込む").click()
    expect(nurse.locator("#pi-error")).to_contain_text("QRコードが見つかりません")
    check_page(nurse, "paper-intake-error")

    # The photographed form: filed on the patient its QR code names, awaiting transcription.
    nurse.locator("#pi-camera").set_input_files(files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg",
                                                        "buffer": photo}])
    nurse.get_by_role("button", name="取り込む").click()
    nurse.wait_for_url(re.compile(r"/paper-intake\?filed="))
    result = nurse.locator("#pi-result")
    expect(result).to_contain_text(f"{patient['name']} 様の「療養支援記録」として登録しました")
    check_page(nurse, "paper-intake-filed")
    item = nurse.locator("#awaiting-list li").filter(has_text=patient["name"]).first
    expect(item).to_contain_text("紙・転記待ち")

    # 転記する: the sheet's form, linked to the paper, the original beside it.
    item.get_by_role("link", name="転記する").click()
    form = nurse.locator("#entry-form")
    expect(form).to_have_attribute("data-paper-intake-id", re.compile(r"[0-9a-f-]{36}"))
    expect(nurse.locator(".paper-source img")).to_be_visible()
    check_page(nurse, "paper-transcribe-form")
    nurse.get_by_label("観察・支援内容").fill("紙の記録から転記：食事は半分摂取、夜間の咳あり。")
    nurse.get_by_role("button", name="記録を送信").click()
    nurse.wait_for_url(re.compile(r"/timeline\?done=posted"))
    transcribed = nurse.locator("#timeline-list li.kind-care-note").filter(has_text="紙から転記済み").first
    expect(transcribed).to_be_visible()

    nurse.goto("/paper-intake")
    expect(nurse.locator("#awaiting-list li").filter(has_text=patient["name"])).to_have_count(0)
