"""Every schema version has its A4 form; a version deployed without one still prints; PDFs carry a Japanese font."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
from pathlib import Path

import pypdfium2
import pypdfium2.raw as pdfium
import pytest
from fastapi.testclient import TestClient

from renkei.app import create_app
from renkei.printing.qr import PDFIUM_LOCK
from renkei.printing.render import pdf_text
from tests.factories import auth_headers
from tests.printing.conftest import SHEETS_DIR
from tests.printing.test_print_forms import flat
from tests.timeline.support import posted

FORMS_DIR = SHEETS_DIR.parent / "forms"
CJK_FONT = re.compile(r"Noto.?Sans.?CJK.?JP|IPAex", re.IGNORECASE)


def test_every_schema_version_has_its_print_form():
    versions = [p for p in SHEETS_DIR.glob("*/*.json") if not p.parent.name.startswith("_")]
    assert len(versions) >= 7
    missing = [f"forms/{p.parent.name}/{p.stem}.html.j2" for p in versions
               if not (FORMS_DIR / p.parent.name / f"{p.stem}.html.j2").is_file()]
    assert not missing


def test_a_sheet_version_without_its_own_form_prints_in_the_generic_layout(
    tmp_path: Path, settings, connection, db, keyring, world,
):
    schemas = tmp_path / "schemas"
    shutil.copytree(SHEETS_DIR, schemas)
    v2 = json.loads((schemas / "message" / "1.json").read_text("utf-8"))
    v2["$id"], v2["x-version"] = v2["$id"].replace("/1.json", "/2.json"), 2
    (schemas / "message" / "2.json").write_text(json.dumps(v2, ensure_ascii=False), "utf-8")
    assert not (FORMS_DIR / "message" / "2.html.j2").exists()
    app = create_app(settings.model_copy(update={"schemas_dir": schemas}), bind=connection)
    doctor = auth_headers(db, settings, keyring, world.physician)
    with TestClient(app, base_url="http://testserver") as client:
        entry = posted(client, doctor, world.patient_id, "message", {"text": "第2版の連絡です"}, version=2)
        assert entry["sheet_version"] == 2
        pdf = client.get(f"/print/entries/{entry['id']}.pdf", headers=doctor)
        assert pdf.status_code == 200
        text = flat("".join(pdf_text(pdf.content)))
        assert "第2版の連絡です" in text and "様式message第2版" in text
        blank = client.get("/print/blank/message.html?version=2", headers=doctor)
        assert blank.status_code == 200 and "連絡" in blank.text


def embedded_fonts(pdf: bytes) -> set[str]:
    """Base names of the fonts whose program is embedded in the PDF, read from its text objects."""
    names: set[str] = set()
    with PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(pdf)
        try:
            for page in document:
                for obj in page.get_objects(filter=[pdfium.FPDF_PAGEOBJ_TEXT]):
                    font = pdfium.FPDFTextObj_GetFont(obj.raw)
                    length = pdfium.FPDFFont_GetBaseFontName(font, None, 0)
                    buffer = ctypes.create_string_buffer(length)
                    pdfium.FPDFFont_GetBaseFontName(font, buffer, length)
                    size = ctypes.c_size_t()
                    if pdfium.FPDFFont_GetFontData(font, None, 0, ctypes.byref(size)) and size.value > 0:
                        names.add(buffer.value.decode("ascii", "replace"))
        finally:
            document.close()
    return names


@pytest.mark.parametrize("url", ["/print/blank/admission-info.pdf", "/print/blank/care-note.pdf"])
def test_pdf_embeds_a_japanese_cjk_font(client, db, settings, keyring, world, url):
    r = client.get(url, headers=auth_headers(db, settings, keyring, world.physician))
    assert r.status_code == 200
    fonts = embedded_fonts(r.content)
    assert any(CJK_FONT.search(name) for name in fonts), fonts
