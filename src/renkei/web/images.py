"""Uploaded photos decoded within a pixel budget and re-encoded without metadata (EXIF, GPS, XMP, text).

Shared by timeline attachments, consent scans and paper intake. Memory is the budget that matters: a
small, highly compressed file can name a huge bitmap, so the size in the header is checked before any
pixel is decoded, and a large JPEG is decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself
(`Image.draft`, no full-size buffer) instead of being refused.

HEIC photos (iPhone and iPad cameras) are decoded by pillow-heif (libheif with its HEVC decoder, bundled in
the wheel) and re-encoded as JPEG: upright, without EXIF, and viewable on every tablet's browser.
"""

from __future__ import annotations

import io
import math

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from renkei.errors import FieldProblem, PayloadTooLarge, UnsupportedMediaType

# Lets Image.open read HEIF; `decode` still accepts it only where the sniffed type says image/heic.
pillow_heif.register_heif_opener()

# 40 Mpx (160 MB as RGBA) is above any phone's default photo (12-24 Mpx) and bounds one decode's memory.
MAX_PIXELS = 40_000_000
# A baseline JPEG up to this size is reduced while decoding (108/200-Mpx phone modes, scanners at 600 dpi).
MAX_JPEG_PIXELS = 4 * MAX_PIXELS
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# Types that are stored re-encoded as another: HEIC as JPEG.
REENCODED_AS = {"image/heic": "image/jpeg"}
_OPENED_AS = {"image/jpeg": frozenset({"JPEG", "MPO"}), "image/png": frozenset({"PNG"}),
              "image/heic": frozenset({"HEIF"})}
_DRAFT_SCALES = (1, 2, 4, 8)


class TooManyPixels(PayloadTooLarge):
    detail_default = "The image has too many pixels (画像の画素数が多すぎます)"

    def __init__(self, field: str) -> None:
        super().__init__(fields=[FieldProblem(
            field, f"画像が大きすぎます（{MAX_PIXELS // 1_000_000}メガピクセルまで）。解像度を下げてください",
            f"The image is too large (at most {MAX_PIXELS // 1_000_000} megapixels); lower the resolution",
        )])


class UnreadableImage(UnsupportedMediaType):
    detail_default = "The image could not be read (画像を読み取れません)"

    def __init__(self, field: str) -> None:
        super().__init__(fields=[FieldProblem(field, "画像として読み取れません（JPEG・PNGのみ）",
                                              "The file is not a readable JPEG or PNG")])


def _draft_scale(size: tuple[int, int], *, most: int, least: int) -> int | None:
    """The JPEG decoder's reduction (1, 2, 4 or 8): at most `most` pixels out, at least `least` if it can."""
    def pixels(scale: int) -> int:
        return math.ceil(size[0] / scale) * math.ceil(size[1] / scale)

    fits = [scale for scale in _DRAFT_SCALES if pixels(scale) <= most]
    enough = [scale for scale in fits if pixels(scale) >= least]
    return max(enough) if enough else min(fits, default=None)


def decode(
    content: bytes, content_type: str, *, field: str = "/file", mode: str | None = None,
    least: int = MAX_PIXELS,
) -> Image.Image:
    """The upright image, at most MAX_PIXELS, metadata dropped: 413 over the budget, 415 unreadable.

    A baseline JPEG is decoded at the largest reduction that still gives `least` pixels (the full budget
    by default) and `mode="L"` decodes luminance only; any other image over the budget is refused before
    its pixels are decoded.
    """
    try:
        # Not a context manager: closing would free the pixels, and there is no file handle to leak.
        img = Image.open(io.BytesIO(content))
        if img.format not in _OPENED_AS.get(content_type, ()):
            raise UnreadableImage(field)
        width, height = img.size
        # Progressive JPEGs are not reduced: their decoder keeps every coefficient of the full size anyway.
        if img.format in _OPENED_AS["image/jpeg"] and not img.info.get("progressive") \
                and width * height <= MAX_JPEG_PIXELS:
            scale = _draft_scale(img.size, most=MAX_PIXELS, least=least)
            if scale is not None and (scale > 1 or mode is not None):
                img.draft(mode, (max(1, width // scale), max(1, height // scale)))
        if img.width * img.height > MAX_PIXELS:
            raise TooManyPixels(field)
        img.load()
        # Orientation lives in EXIF, which is about to go: apply it to the pixels first.
        ImageOps.exif_transpose(img, in_place=True)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(field) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(field) from exc
    img.info = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") else {}
    return img


def strip_metadata(content: bytes, content_type: str, *, field: str = "/file") -> bytes:
    """Re-encode a JPEG or PNG without EXIF, GPS, XMP or text chunks; orientation and colour profile kept."""
    return _encode(decode(content, content_type, field=field), content_type, field)


def normalise(content: bytes, content_type: str, *, field: str = "/file") -> tuple[bytes, str]:
    """A photo as it is stored: JPEG and PNG stripped of metadata, HEIC re-encoded as such a JPEG.
    Returns the bytes and their content type."""
    stored_as = REENCODED_AS.get(content_type, content_type)
    try:
        image = decode(content, content_type, field=field)
    except UnreadableImage:
        if content_type not in REENCODED_AS:
            raise
        raise UnsupportedMediaType(fields=[FieldProblem(field, "HEIC画像として読み取れません",
                                                        "The file is not a readable HEIC image")]) from None
    return _encode(image, stored_as, field), stored_as


def _encode(image: Image.Image, content_type: str, field: str) -> bytes:
    icc = image.info.get("icc_profile")
    if content_type == "image/jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    options: dict[str, object] = {"quality": 95} if content_type == "image/jpeg" else {"optimize": False}
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    try:
        image.save(out, FORMATS[content_type], **options)
    except (OSError, ValueError) as exc:
        raise UnreadableImage(field) from exc
    return out.getvalue()
