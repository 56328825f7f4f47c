"""Every sheet prints on its A4 form: Japanese titles, the entry's values, tick boxes, header and QR on each page."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from renkei.printing import qr
from renkei.printing.forms import FormBuilder
from renkei.printing.render import pdf_page_png, pdf_text
from renkei.sheets.registry import SheetRegistry
from tests.printing.conftest import ARTIFACTS, SHEETS_DIR, Printed
from tests.printing.instances import PLATFORM_OWNED, Instance

SHEET_IDS = sorted(p.name for p in SHEETS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
# The MHLW model forms are laid out by hand with their official headings.
OFFICIAL_HEADINGS = {
    "admission-info": [
        "入院時情報提供書", "1.利用者（患者）基本情報について", "2.家族の情報について", "3.本人／家族の意向について",
        "4.入院前の介護サービスの利用状況について", "5.今後の在宅生活の展望について（ケアマネジャーとしての意見）",
        "6.カンファレンス等について（ケアマネジャーからの希望）", "7.身体・生活機能の状況／療養生活上の課題について",
        "8.お薬について", "9.かかりつけ医について",
    ],
    "discharge-info": [
        "退院・退所情報記録書", "1.基本情報・現在の状態等", "入院（所）概要", "現在治療中の疾患", "2.課題認識のための情報",
        "看護の視点", "リハビリの視点", "症状・病状の予後・予測", "聞き取り記録",
    ],
}
# Hand-laid grids print a ticked option as a bare ■ under its column heading: the row reads title + boxes.
GRID_FIELDS = {"admission-info": "/function/adl/"}
SHEET_VERSIONS = sorted(f"{p.parent.name}/{p.stem}" for p in SHEETS_DIR.glob("*/*.json")
                        if not p.parent.name.startswith("_"))


def flat(text: str) -> str:
    """PDF text without any whitespace, so wrapped lines still match."""
    return re.sub(r"\s+", "", text)


def missing_values(registry: SheetRegistry, sheet_version: str, instance: Instance, text: str) -> list[str]:
    """Every value of the instance that the PDF text lacks: texts, dates and numbers as printed,
    ■ + label of every ticked option, and one ■ per true boolean (counted: their labels vary by form)."""
    sheet_id, version = sheet_version.split("/")
    form = FormBuilder(registry).build(registry.get(sheet_id, int(version)), instance.data)
    grid = GRID_FIELDS.get(sheet_id)
    wanted = [flat(t) for t in instance.texts]
    for pointer, label in instance.checked:
        if grid and pointer.startswith(grid):
            f = form.at(pointer)
            wanted.append(flat(f.title) + "".join("■" if o.checked else "□" for o in f.options))
        else:
            wanted.append("■" + flat(label))
    missing = [w for w in wanted if w not in text]
    ticks = len(instance.checked) + len(instance.true_booleans)
    if text.count("■") != ticks:
        missing.append(f"{ticks} ticks (■) expected, {text.count('■')} printed")
    return missing


@pytest.mark.parametrize("sheet_version", SHEET_VERSIONS)
def test_entry_pdf_shows_the_japanese_section_titles_and_every_value(printed: Printed, registry, sheet_version):
    sheet_id, version = sheet_version.split("/")
    sheet = registry.get(sheet_id, int(version))
    instances = printed.every_field[sheet_version]
    assert instances, "every schema version is printed"
    if sheet_id in OFFICIAL_HEADINGS:
        headings = OFFICIAL_HEADINGS[sheet_id]
    else:
        headings = [s.title for s in FormBuilder(registry).build(sheet, None).sections if s.title]
    for instance, pages in instances:
        text = flat("".join(pages))
        assert flat(sheet.title) in text
        assert not [h for h in headings if flat(h) not in text]
        assert not missing_values(registry, sheet_version, instance, text)


def test_every_enum_option_is_ticked_in_some_printed_instance(printed: Printed, registry):
    """The generated instances cover every option of every choice, so each label is printed ticked once."""
    for sheet_version, instances in printed.every_field.items():
        sheet_id, version = sheet_version.split("/")
        form = FormBuilder(registry).build(registry.get(sheet_id, int(version)), None)
        ticked = {(re.sub(r"/\d+/", "/*/", p), label) for instance, _ in instances for p, label in instance.checked}
        # Options the platform chooses (the ACP's current/superseded status) are not the client's to pick.
        options = {(re.sub(r"/\d+/", "/*/", p), o.label) for p, f in form._index.items()
                   if f.kind in ("choice", "multi") and p not in PLATFORM_OWNED.get(sheet_id, ())
                   for o in f.options}
        assert not options - ticked, (sheet_version, sorted(options - ticked))


@pytest.mark.parametrize("sheet_id", SHEET_IDS)
def test_every_page_carries_patient_header_page_number_author_printer_and_qr(printed: Printed, sheet_id):
    pages = pdf_text(printed.pdfs[sheet_id])
    for number, page in enumerate(pages, start=1):
        text = flat(page)
        assert "山田花子様" in text and "ヤマダハナコ" in text and "1938年4月2日" in text
        assert f"{number}/{len(pages)}頁" in text
        assert f"様式{sheet_id}第1版" in text
        author = "高橋健一" if sheet_id == "admission-info" else "医師一郎"
        assert f"記入者Author:{author}" in text
        assert "印刷Printed:医師一郎（テスト在宅クリニック）" in text
    images = [Image.open(io.BytesIO(pdf_page_png(printed.pdfs[sheet_id], i, dpi=200))) for i in range(len(pages))]
    assert all(len(qr.scan([image]).texts) == 1 for image in images)


@pytest.mark.parametrize("sheet_id", ["admission-info", "discharge-info"])
def test_mhlw_model_forms_print_on_front_and_back_pages(printed: Printed, sheet_id):
    pages = pdf_text(printed.pdfs[sheet_id])
    assert len(pages) == 2
    back = flat(pages[1])
    assert ("7.身体・生活機能の状況" in back) if sheet_id == "admission-info" else ("2.課題認識のための情報" in back)


@pytest.mark.parametrize("sheet_id", SHEET_IDS)
def test_one_page_of_each_sheet_is_rendered_as_png_for_review(printed: Printed, sheet_id):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for variant, pdf in (("entry", printed.pdfs[sheet_id]), ("blank", printed.blank[sheet_id])):
        png = pdf_page_png(pdf, 0)
        (ARTIFACTS / f"{sheet_id}-{variant}.png").write_bytes(png)
        image = Image.open(io.BytesIO(png))
        assert abs(image.height / image.width - 297 / 210) < 0.01
        # A page with a form on it is far from white.
        assert sum(image.convert("L").histogram()[:128]) > 5_000


@pytest.mark.parametrize("sheet_id", SHEET_IDS)
def test_blank_form_has_the_patient_header_and_nothing_else_of_the_patient(printed: Printed, sheet_id):
    text = flat("".join(pdf_text(printed.blank[sheet_id])))
    assert "山田花子様" in text and "ヤマダハナコ" in text
    for private in ("みどり市中央1-2-3", "0120-000-000", "0000123456", "39123456", "■"):
        assert private not in text
    if sheet_id != "message":  # the message sheet has no options to tick
        assert "□" in text, "every option is printed unticked so the form can be filled by hand"


@pytest.mark.parametrize("sheet_id", SHEET_IDS)
def test_fully_blank_form_names_no_patient(printed: Printed, sheet_id):
    text = flat("".join(pdf_text(printed.fully_blank[sheet_id])))
    assert "山田" not in text and "ヤマダ" not in text and "■" not in text
    assert "年月日" in text  # an empty birth-date line to fill in


def test_every_enum_option_of_a_blank_sheet_is_printed_for_ticking_by_hand(printed: Printed, registry):
    text = flat("".join(pdf_text(printed.fully_blank["care-note"])))
    form = FormBuilder(registry).build(registry.get("care-note", 1), None)
    options = [o.label for f in form._index.values() if f.kind in ("choice", "multi") for o in f.options]
    assert options and all(flat("□" + label) in text for label in options)
