"""Attachments within a pixel budget: a small file that decodes to a huge bitmap is refused or reduced."""

from __future__ import annotations

import io

from PIL import Image

from renkei.timeline.models import Attachment
from renkei.web import images
from tests.timeline.support import upload


def download(client, headers, attachment_id: str) -> bytes:
    r = client.get(f"/api/v1/attachments/{attachment_id}", headers=headers)
    assert r.status_code == 200
    return r.content


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_png_over_the_pixel_budget_is_refused_with_413_naming_the_file_field(client, db, world, as_user):
    # 42 Mpx of one colour compresses to kilobytes; under the old 64 Mpx budget it was decoded and stored.
    png = encoded(Image.new("1", (7000, 6000), 1), "PNG")
    assert len(png) < 100_000
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", png, "big.png")
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    field = r.json()["fields"][0]
    assert field["path"] == "/file" and "40" in field["message_ja"] and "40" in field["message_en"]
    assert db.query(Attachment).count() == 0


def test_large_jpeg_is_stored_reduced_by_the_decoder_instead_of_decoded_at_full_size(
    client, world, as_user,
):
    jpeg = encoded(Image.new("L", (9000, 6000), 128), "JPEG", quality=50)
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "care-note", jpeg, "108mp.jpg")
    assert r.status_code == 201, r.text
    stored = Image.open(io.BytesIO(download(client, nurse, r.json()["id"])))
    assert stored.size == (4500, 3000)
    assert stored.width * stored.height <= images.MAX_PIXELS


def test_progressive_jpeg_over_the_budget_is_refused_rather_than_reduced(
    client, world, as_user,
):
    jpeg = encoded(Image.new("L", (9000, 6000), 128), "JPEG", quality=50, progressive=True)
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", jpeg, "progressive.jpg")
    assert r.status_code == 413 and r.json()["fields"][0]["path"] == "/file"


def test_photo_within_the_budget_keeps_its_full_resolution(client, world, as_user):
    jpeg = encoded(Image.new("RGB", (4000, 3000), (120, 60, 30)), "JPEG", quality=80)
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "care-note", jpeg, "12mp.jpg")
    assert r.status_code == 201, r.text
    stored = Image.open(io.BytesIO(download(client, nurse, r.json()["id"])))
    assert stored.size == (4000, 3000)
