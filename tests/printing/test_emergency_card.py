"""The emergency card: built from the current (final, newest) emergency sheet, and it never loses information."""

from __future__ import annotations

import pypdfium2
import pytest
from PIL import Image

from renkei.printing.qr import PDFIUM_LOCK
from renkei.printing.render import pdf_page_png, pdf_text
from tests.factories import auth_headers
from tests.printing.conftest import ARTIFACTS
from tests.printing.support import intake, photo, printout
from tests.printing.test_print_forms import flat
from tests.timeline.support import etag_of, example, posted

DPI = 100


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def _card(client, headers, patient_id, *, folded: bool = False, keep: str | None = None) -> bytes:
    r = client.get(f"/print/patients/{patient_id}/emergency-card.pdf" + ("?format=card" if folded else ""),
                   headers=headers)
    assert r.status_code == 200, r.text
    if keep:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{keep}.png").write_bytes(pdf_page_png(r.content, 0))
    return r.content


def visible(pdf: bytes, needles: list[str]) -> dict[str, bool]:
    """Whether each text is drawn where a reader can see it on page 1: found in the text layer, and ink in
    its box on the rendered page. Text clipped away (overflow: hidden) is still in the text layer but its
    box renders blank."""
    out: dict[str, bool] = {}
    with PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(pdf)
        try:
            page = document[0]
            _, height = page.get_size()
            image = page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L").copy()
            text = page.get_textpage()
            for needle in needles:
                searcher = text.search(needle)
                found = searcher.get_next()
                if found is None:
                    out[needle] = False
                    continue
                index, count = found
                boxes = [text.get_charbox(i) for i in range(index, index + count)]
                left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
                bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
                box = (int(left * DPI / 72), int((height - top) * DPI / 72),
                       int(right * DPI / 72) + 1, int((height - bottom) * DPI / 72) + 1)
                out[needle] = _inked(image, box)
        finally:
            document.close()
    return out


def _inked(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    crop = image.crop(box)
    return sum(crop.histogram()[:128]) > 0


def test_card_shows_the_current_dnar_not_a_later_full_treatment_entry_entered_in_error(client, world, doctor):
    posted(client, doctor, world.patient_id, "emergency-info", {"resuscitation": {"wish": "dnar"}})
    wrong = posted(client, doctor, world.patient_id, "emergency-info",
                   {"resuscitation": {"wish": "full_treatment"}})
    r = client.post(f"/api/v1/entries/{wrong['id']}/entered-in-error", json={"reason": "別の患者の情報"},
                    headers=doctor)
    assert r.status_code == 200, r.text
    for folded in (False, True):
        text = flat("".join(pdf_text(_card(client, doctor, world.patient_id, folded=folded))))
        assert "■心肺蘇生は望まない" in text
        assert "■全ての処置を希望" not in text


def test_card_prints_the_conditions_of_conditional_wishes(client, world, doctor):
    posted(client, doctor, world.patient_id, "emergency-info", {"resuscitation": {"wish": "not_confirmed"}})
    acp = example("acp")
    acp["treatment_preferences"].update(cpr="conditional", cpr_condition="回復の見込みがあるときのみ",
                                        ambulance="conditional", ambulance_condition="骨折など苦痛の強いとき")
    posted(client, doctor, world.patient_id, "acp", acp)
    for folded in (False, True):
        text = flat("".join(pdf_text(_card(client, doctor, world.patient_id, folded=folded))))
        assert "心肺蘇生□希望する■条件付き□希望しない□未定（条件：回復の見込みがあるときのみ）" in text
    text = flat("".join(pdf_text(_card(client, doctor, world.patient_id))))
    assert "（条件：骨折など苦痛の強いとき）" in text


def test_card_prints_the_latest_amendment_of_the_emergency_sheet(client, world, doctor):
    first = posted(client, doctor, world.patient_id, "emergency-info",
                   {"resuscitation": {"wish": "full_treatment"}, "allergies": [{"substance": "卵"}]})
    r = client.post(f"/api/v1/entries/{first['id']}/amend", headers={**doctor, "If-Match": etag_of(first)}, json={
        "data": {"resuscitation": {"wish": "dnar"}, "allergies": [{"substance": "ペニシリン系抗菌薬"}]},
        "reason": "本人・家族と再確認した",
    })
    assert r.status_code == 201, r.text
    text = flat("".join(pdf_text(_card(client, doctor, world.patient_id))))
    assert "■心肺蘇生は望まない" in text and "ペニシリン系抗菌薬" in text
    assert "■全ての処置を希望" not in text and "卵" not in text


LOTS = {
    "allergies": [{"substance": f"アレルゲン{n:02d}号", "reaction": "発疹と呼吸困難"} for n in range(1, 16)],
    "diseases": [{"name": f"既往症{n:02d}"} for n in range(1, 13)],
    "medications": [{"name": f"内服薬{n:02d}", "dose": "1錠"} for n in range(1, 11)],
    "emergency_contacts": [{"name": f"家族{n}", "relationship": "子", "phone": f"090-0000-000{n}"}
                           for n in range(1, 4)],
    "contacts": {"attending_physician": {"clinic": "みどり在宅クリニック", "phone_24h": "048-555-0199"}},
    "resuscitation": {"wish": "dnar"},
}


def test_every_allergy_is_visible_on_the_one_page_card_and_capped_lists_say_how_many_more(client, world, doctor):
    posted(client, doctor, world.patient_id, "emergency-info", LOTS)
    pdf = _card(client, doctor, world.patient_id, keep="emergency-card-many")
    pages = pdf_text(pdf)
    assert len(pages) == 1
    allergies = [a["substance"] for a in LOTS["allergies"]]
    shown = visible(pdf, allergies)
    assert all(shown.values()), [a for a, ok in shown.items() if not ok]
    text = flat(pages[0])
    assert "アレルギー（全15件）" in text
    assert "ほか6件（急変時情報シート参照）" in text  # 12 diseases, 6 printed
    assert "ほか2件（お薬手帳・急変時情報シート参照）" in text  # 10 medications, 8 printed
    assert all(f"家族{n}" in text for n in range(1, 4))


def test_every_allergy_is_visible_on_the_folded_card_and_capped_lists_say_how_many_more(client, world, doctor):
    posted(client, doctor, world.patient_id, "emergency-info", LOTS)
    pdf = _card(client, doctor, world.patient_id, folded=True, keep="emergency-card-folded-many")
    pages = pdf_text(pdf)
    assert len(pages) == 1
    shown = visible(pdf, [a["substance"] for a in LOTS["allergies"]])
    assert all(shown.values()), [a for a, ok in shown.items() if not ok]
    text = flat(pages[0])
    assert "ほか7件（急変時情報シート参照）" in text  # 12 diseases, 5 on the card
    assert "ほか4件（お薬手帳参照）" in text  # 10 medications, 6 on the card
    assert all(f"090-0000-000{n}" in text for n in range(1, 4))


def test_the_visibility_check_sees_text_that_is_clipped_away(client, world, doctor):
    """The check above can fail: the same card with the old fixed, clipping panel hides allergies."""
    posted(client, doctor, world.patient_id, "emergency-info", LOTS)
    html = client.get(f"/print/patients/{world.patient_id}/emergency-card.html?format=card", headers=doctor).text
    clipped = html.replace("</style>", ".card-cut { height: 15mm; min-height: 0; overflow: hidden; }</style>", 1)
    pdf = client.app.state.print_kit.renderer.pdf(clipped)
    shown = visible(pdf, [a["substance"] for a in LOTS["allergies"]])
    assert not all(shown.values())
    assert all(a["substance"] in flat("".join(pdf_text(pdf))) for a in LOTS["allergies"])


def test_twenty_long_allergies_still_fit_the_one_page_card_in_smaller_type(client, world, doctor):
    data = {**LOTS, "diseases": [{"name": f"既往症{n:02d}"} for n in range(1, 21)], "allergies": [
        {"substance": f"長い名前の薬剤アレルゲン第{n:02d}号（ペニシリン系）", "reaction": "全身の発疹と呼吸困難、血圧低下"}
        for n in range(1, 21)]}
    posted(client, doctor, world.patient_id, "emergency-info", data)
    pdf = _card(client, doctor, world.patient_id, keep="emergency-card-twenty")
    assert len(pdf_text(pdf)) == 1
    shown = visible(pdf, [f"アレルゲン第{n:02d}号" for n in range(1, 21)])
    assert all(shown.values()), [a for a, ok in shown.items() if not ok]


def test_a_card_that_cannot_fit_one_page_says_how_many_pages_it_has(client, world, doctor):
    long = "、".join(["薬疹・アナフィラキシーの既往あり"] * 5)
    data = {**LOTS, "allergies": [{"substance": f"薬剤{n:02d}号 {long}", "reaction": long} for n in range(1, 21)]}
    posted(client, doctor, world.patient_id, "emergency-info", data)
    pages = [flat(p) for p in pdf_text(_card(client, doctor, world.patient_id))]
    assert len(pages) >= 2
    assert "2頁以上のときは全頁を一緒に保管" in pages[0] and f"1/{len(pages)}頁" in pages[0]
    assert all("山田花子様" in p for p in pages)  # each page names the patient
    assert all(f"薬剤{n:02d}号" in "".join(pages) for n in range(1, 21))


def test_card_says_a_newer_form_waits_on_paper_for_transcription(client, world, doctor):
    posted(client, doctor, world.patient_id, "emergency-info")
    before = flat("".join(pdf_text(_card(client, doctor, world.patient_id))))
    assert "転記待ち" not in before
    pdf = printout(client, doctor, f"/print/blank/emergency-info.pdf?patient_id={world.patient_id}")
    assert intake(client, doctor, photo(pdf)).status_code == 201
    after = flat("".join(pdf_text(_card(client, doctor, world.patient_id))))
    assert "紙で届いており、転記待ちです" in after
