"""The HTML print view: a preview of the PDF that says so, and that a browser still prints with the patient
header and page numbers on every page (browsers ignore WeasyPrint's running elements)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from renkei.printing.render import pdf_page_png, pdf_text
from tests.factories import auth_headers
from tests.printing.conftest import ARTIFACTS
from tests.printing.test_print_forms import flat

CHROMIUM = os.environ.get("RENKEI_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def test_html_view_says_it_is_a_preview_and_links_to_the_pdf(client, world, doctor):
    url = f"/print/blank/admission-info.html?patient_id={world.patient_id}"
    r = client.get(url, headers=doctor)
    assert r.status_code == 200
    assert "印刷プレビュー" in r.text and 'class="html-view"' in r.text
    href = re.search(r'<a class="pdf-link" href="([^"]+)"', r.text).group(1)
    assert href == f"admission-info.pdf?patient_id={world.patient_id}"
    pdf = client.get(urljoin(url, href), headers=doctor)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "印刷プレビュー" not in flat("".join(pdf_text(pdf.content)))
    # The header and footer are the print table's thead and tfoot: what browsers repeat on every page.
    thead = r.text.index("<thead>"), r.text.index("</thead>")
    assert thead[0] < r.text.index('class="page-header"') < thead[1]
    assert r.text.index("<tfoot>") < r.text.index('class="page-footer"') < r.text.index("</tfoot>")


def test_emergency_card_html_view_links_to_its_own_pdf_and_the_folded_card_has_no_frame(client, world, doctor):
    page = client.get(f"/print/patients/{world.patient_id}/emergency-card.html", headers=doctor).text
    assert 'href="emergency-card.pdf"' in page and '<table class="view-frame">' in page
    folded = client.get(f"/print/patients/{world.patient_id}/emergency-card.html?format=card", headers=doctor).text
    assert "view-frame\"" not in folded and "class=\"page-header\"" not in folded


def _chromium_unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM}"
    return None


def test_a_browser_prints_the_html_view_with_the_patient_header_and_page_number_on_every_page(
    client, world, doctor,
):
    reason = _chromium_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    html = client.get(f"/print/blank/admission-info.html?patient_id={world.patient_id}", headers=doctor).text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "admission-info-browser-print-p2.png").write_bytes(pdf_page_png(pdf, 1))
    pages = [flat(text) for text in pdf_text(pdf)]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert "山田花子様" in text and "ヤマダハナコ" in text, number
        assert "様式admission-info第1版" in text, number
        assert f"{number}/{len(pages)}頁" in text, number
        assert "印刷プレビュー" not in text
