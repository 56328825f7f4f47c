"""forms/ templates -> HTML -> PDF (WeasyPrint), and PDF -> PNG for previews and checks."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Any

import pypdfium2
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

from renkei.printing.formatting import format_date, format_datetime
from renkei.printing.qr import PDFIUM_LOCK

log = logging.getLogger("renkei.printing")

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
GENERIC_SHEET = "_sheet.html.j2"
# WeasyPrint's logger reports every unsupported CSS property at WARNING; those are layout details,
# not operational problems, and the messages could quote template text.
logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)


class FormRenderer:
    """The Jinja2 environment of forms/ and a shared WeasyPrint font configuration."""

    def __init__(self, forms_dir: Path) -> None:
        self.forms_dir = Path(forms_dir)
        self.env = Environment(
            loader=FileSystemLoader(str(self.forms_dir)),
            autoescape=select_autoescape(("html", "j2", "html.j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["jdate"] = format_date
        self.env.filters["jdatetime"] = format_datetime
        self.env.filters["circled"] = lambda n: CIRCLED[int(n) - 1] if str(n).isdigit() and 0 < int(n) <= 10 else n
        self.env.globals["css"] = self._css
        self._fonts = FontConfiguration()
        # Pango's font map is not safe to share between threads, and the route handlers run in a pool.
        self._lock = threading.Lock()

    def _css(self) -> Markup:
        # The stylesheet is our own file, not user input; escaping it would break quoted font names.
        return Markup((self.forms_dir / "_print.css").read_text("utf-8"))

    def has(self, name: str) -> bool:
        return (self.forms_dir / name).is_file()

    def sheet_template(self, sheet_id: str, version: int) -> str:
        """The sheet version's own form, or the generic layout from its schema when it has none yet
        (a schema version deployed ahead of its template still prints, in the plain layout)."""
        name = f"{sheet_id}/{version}.html.j2"
        if self.has(name):
            return name
        log.warning("no print template for sheet %s version %d: using the generic layout", sheet_id, version)
        return GENERIC_SHEET

    def html(self, template: str, context: dict[str, Any]) -> str:
        return self.env.get_template(template).render(**context)

    def pdf(self, html: str) -> bytes:
        with self._lock:
            return HTML(string=html, base_url=str(self.forms_dir)).write_pdf(font_config=self._fonts)


def pdf_page_png(pdf: bytes, page: int = 0, *, dpi: int = 110) -> bytes:
    """One page of a PDF as PNG (previews, tests, and the layout check by eye)."""
    with PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(pdf)
        try:
            image = document[page].render(scale=dpi / 72).to_pil().copy()
        finally:
            document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_text(pdf: bytes) -> list[str]:
    """The text of every page, for tests and for checking what a printout carries."""
    with PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(pdf)
        try:
            return [document[i].get_textpage().get_text_range() for i in range(len(document))]
        finally:
            document.close()
