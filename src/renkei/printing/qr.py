"""QR codes: draw one for a printed form, and find them again in a photo, scan or PDF.

Finding is bounded, because a 2 KB PDF can declare pages of several square metres: pages are
rasterised one at a time and dropped after scanning, each within a pixel budget, the whole upload
within another, and a photo within the budget of `renkei.web.images`.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pypdfium2
import qrcode
import qrcode.image.svg
import zxingcpp
from PIL import Image

from renkei.errors import UnsupportedMediaType
from renkei.web import images

# Enough resolution for a 20 mm code on A4 (about 160 px across).
PDF_DPI = 200
# A3 at 200 dpi is 2339 x 3307 = 7.7 Mpx; a larger page is rendered at a lower resolution, not refused.
MAX_PAGE_PIXELS = 8_000_000
# Ten A4 pages at 200 dpi: a paper form is one to four pages, and a stack is filed one form at a time.
MAX_TOTAL_PIXELS = 40_000_000
MAX_PDF_PAGES = 10
PDF_MAGIC = b"%PDF-"
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
# PDFium is not thread-safe, not even across documents, and route handlers run in a thread pool.
PDFIUM_LOCK = threading.Lock()


class UnreadableUpload(ValueError):
    """The upload is not an image or PDF that can be opened."""


class TooManyPages(UnreadableUpload):
    """A PDF with more pages than one paper form has."""


@dataclass(frozen=True)
class Scan:
    texts: list[str]  # decoded QR texts, in reading order, duplicates removed
    damaged: int  # QR symbols that were located but could not be decoded


def svg_data_uri(text: str) -> str:
    """An SVG QR code as a data: URI, for an <img> in the print template.

    Error-correction level Q survives a fold, a stain or a fax's loss of detail.
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=2,
                         image_factory=qrcode.image.svg.SvgPathImage)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def find(data: bytes) -> Scan:
    """Every QR code in an uploaded photo, scan or PDF, with one page in memory at a time.

    Raises UnreadableUpload, TooManyPages, or the 413 of `renkei.web.images` for a photo over its budget.
    """
    texts: list[str] = []
    damaged = 0
    for page in pages_of(data):
        found = scan([page])
        del page  # the next page is rendered only once this one is gone
        damaged += found.damaged
        texts += [text for text in found.texts if text not in texts]
    return Scan(texts, damaged)


def pages_of(data: bytes) -> Iterator[Image.Image]:
    """The upload as greyscale pages within the pixel budgets, lazily: a PDF's pages, or one photo."""
    if data.startswith(PDF_MAGIC):
        return _pdf_pages(data)
    return iter([_photo(data)])


def _photo(data: bytes) -> Image.Image:
    content_type = next((t for magic, t in PHOTO_TYPES.items() if data.startswith(magic)), None)
    if content_type is None:
        raise UnreadableUpload("only JPEG, PNG or PDF")
    try:
        # A JPEG is decoded as luminance at no less than the scanning size; a PNG is checked before decoding.
        image = images.decode(data, content_type, mode="L", least=MAX_PAGE_PIXELS).convert("L")
    except UnsupportedMediaType as exc:
        raise UnreadableUpload("not a readable image") from exc
    return _within(image, MAX_PAGE_PIXELS)


def _within(image: Image.Image, pixels: int) -> Image.Image:
    if image.width * image.height <= pixels:
        return image
    factor = math.sqrt(pixels / (image.width * image.height))
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _pdf_pages(data: bytes) -> Iterator[Image.Image]:
    with PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise UnreadableUpload("not a readable PDF") from exc
        count = len(document)
    try:
        if count > MAX_PDF_PAGES:
            raise TooManyPages(f"more than {MAX_PDF_PAGES} pages")
        budget = min(MAX_PAGE_PIXELS, MAX_TOTAL_PIXELS // max(count, 1))
        for index in range(count):
            with PDFIUM_LOCK:
                page = _render(document, index, budget)
            if page is not None:
                yield page
                del page
    finally:
        with PDFIUM_LOCK:
            document.close()


def _render(document: pypdfium2.PdfDocument, index: int, budget: int) -> Image.Image | None:
    """One page in greyscale at up to PDF_DPI, scaled down to `budget` pixels (a MediaBox can be huge)."""
    page = document[index]
    try:
        width, height = page.get_size()
        if not (width > 0 and height > 0):
            return None
        scale = min(PDF_DPI / 72, math.sqrt(budget / (width * height)))
        # PDFium rounds the bitmap's sides up.
        while math.ceil(width * scale) * math.ceil(height * scale) > budget:
            scale *= 0.99
        bitmap = page.render(scale=scale, grayscale=True)
        try:
            # The PIL image shares PDFium's buffer: copy it, and free the bitmap here under the lock
            # rather than in a finaliser on whichever thread collects it.
            return bitmap.to_pil().copy()
        finally:
            bitmap.close()
    except pypdfium2.PdfiumError as exc:
        raise UnreadableUpload("not a readable PDF page") from exc
    finally:
        page.close()


def scan(pages: Iterable[Image.Image]) -> Scan:
    """Every QR code on the given pages."""
    texts: list[str] = []
    damaged = 0
    for image in pages:
        for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode, return_errors=True):
            if not code.valid:
                damaged += 1
            elif code.text not in texts:
                texts.append(code.text)
    return Scan(texts, damaged)
