"""QR codes: draw one for a printed form, and find them again in a photo, scan or PDF."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pypdfium2
import qrcode
import qrcode.image.svg
import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

# Enough resolution for a 20 mm code on A4 (about 160 px across) without rasterising huge bitmaps.
PDF_DPI = 200
MAX_PDF_PAGES = 20
# A phone photo is around 12-50 Mpx; anything bigger is refused before it is decoded into memory.
MAX_PIXELS = 60_000_000
PDF_MAGIC = b"%PDF-"


class UnreadableUpload(ValueError):
    """The upload is not an image or PDF that can be opened."""


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


def pages_of(data: bytes) -> list[Image.Image]:
    """The upload as images: every page of a PDF, or the one image of a JPEG/PNG."""
    if data.startswith(PDF_MAGIC):
        return _pdf_pages(data)
    return [_image(data)]


def _image(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ("JPEG", "PNG"):
                raise UnreadableUpload("only JPEG, PNG or PDF")
            if probe.width * probe.height > MAX_PIXELS:
                raise UnreadableUpload("image too large")
            probe.load()
            # Phones store the camera's orientation separately; apply it so the page is upright.
            return ImageOps.exif_transpose(probe).convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnreadableUpload("not a readable image") from exc


def _pdf_pages(data: bytes) -> list[Image.Image]:
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise UnreadableUpload("not a readable PDF") from exc
    try:
        images = []
        for index in range(min(len(document), MAX_PDF_PAGES)):
            page = document[index]
            width, height = page.get_size()
            if width * height * (PDF_DPI / 72) ** 2 > MAX_PIXELS:
                raise UnreadableUpload("PDF page too large")
            images.append(page.render(scale=PDF_DPI / 72, grayscale=True).to_pil())
            page.close()
        return images
    finally:
        document.close()


def scan(images: list[Image.Image]) -> Scan:
    """Every QR code on the given pages."""
    texts: list[str] = []
    damaged = 0
    for image in images:
        for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode, return_errors=True):
            if not code.valid:
                damaged += 1
            elif code.text not in texts:
                texts.append(code.text)
    return Scan(texts, damaged)
