"""Attachments: sniffed type, size limit, EXIF/GPS stripped from photos, encrypted at rest, team access."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, PngImagePlugin

from renkei.app import create_app
from renkei.timeline import attachments
from renkei.timeline.models import Attachment
from tests.timeline.support import example, png_bytes, post, posted, upload

PDF = b"%PDF-1.7\n1 0 obj << /Title (" + "診療情報提供書".encode() + b") >>\nendobj\n%%EOF\n"
# Only the ftyp box of a HEIC file: its brands are right, there is no image in it.
HEIC_HEADER_ONLY = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def location_exif() -> Image.Exif:
    """What a tablet camera writes: GPS position, camera make and orientation 6 (rotated)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TabletCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (35.0, 41.0, 22.5),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (139.0, 41.0, 30.0),
    }
    return exif


def photo_with_location() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (180, 40, 40)).save(out, "JPEG", exif=location_exif().tobytes())
    return out.getvalue()


def heic_with_location() -> bytes:
    """An iPhone-style HEIC (HEVC) photo, landscape pixels shown rotated, with the EXIF above."""
    image = Image.new("RGB", (64, 32), (180, 40, 40))
    image.paste((40, 40, 180), (32, 0, 64, 32))
    out = io.BytesIO()
    image.save(out, "HEIF", exif=location_exif().tobytes(), quality=90)
    heic = out.getvalue()
    assert heic[4:12] == b"ftypheic"
    shown = Image.open(io.BytesIO(heic))
    assert shown.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test photo must carry a location"
    return heic


def download(client, headers, attachment_id):
    return client.get(f"/api/v1/attachments/{attachment_id}", headers=headers)


def test_photo_is_stored_without_exif_or_location_and_kept_upright(client, world, as_user):
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "care-note", photo_with_location(), "IMG_0001.jpg")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["content_type"] == "image/jpeg" and meta["metadata_stripped"] is True
    got = download(client, nurse, meta["id"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"] == f'attachment; filename="{meta["id"]}.jpg"'
    image = Image.open(io.BytesIO(got.content))
    assert image.size == (20, 40)
    assert dict(image.getexif()) == {} and image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert b"Exif" not in got.content and b"TabletCam" not in got.content


def test_png_text_chunks_are_stripped(client, world, as_user):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "撮影場所 35.68,139.69")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", out.getvalue(), "wound.png")
    content = download(client, as_user(world.nurse), r.json()["id"]).content
    assert content.startswith(b"\x89PNG") and "撮影場所".encode() not in content and b"tEXt" not in content


def test_pdf_is_accepted_by_its_magic_bytes_and_stored_as_it_is(client, world, as_user):
    nurse = as_user(world.nurse)
    pdf = upload(client, nurse, world.patient_id, "care-note", PDF, "scan.bin").json()
    assert pdf["content_type"] == "application/pdf" and pdf["metadata_stripped"] is False
    assert download(client, nurse, pdf["id"]).content == PDF


def test_heic_photo_is_stored_as_an_upright_jpeg_without_its_location(client, world, as_user):
    nurse = as_user(world.nurse)
    r = upload(client, nurse, world.patient_id, "care-note", heic_with_location(), "IMG_0002.HEIC")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["content_type"] == "image/jpeg" and meta["metadata_stripped"] is True
    got = download(client, nurse, meta["id"])
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"] == f'attachment; filename="{meta["id"]}.jpg"'
    image = Image.open(io.BytesIO(got.content))
    assert image.format == "JPEG" and image.size == (32, 64)
    assert dict(image.getexif()) == {} and image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert b"Exif" not in got.content and b"TabletCam" not in got.content


@pytest.mark.parametrize("head", [
    b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",  # AVIF still image
    b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf",  # generic HEIF holding AV1
    b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf",      # generic HEIF, no codec named
], ids=["avif", "mif1-avif", "mif1-only"])
def test_heif_files_that_are_not_heic_are_not_labelled_as_heic(client, db, world, as_user, head):
    assert attachments.sniff(head) is None
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", head + b"\x00" * 64, "IMG.HEIC")
    assert r.status_code == 415 and db.query(Attachment).count() == 0


def test_heic_header_without_a_readable_image_is_415(client, db, world, as_user):
    assert attachments.sniff(HEIC_HEADER_ONLY[:64]) == "image/heic"
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", HEIC_HEADER_ONLY, "IMG.HEIC")
    assert r.status_code == 415
    assert [(f["path"], f["message_en"]) for f in r.json()["fields"]] == [
        ("/file", "The file is not a readable HEIC image")]
    assert db.query(Attachment).count() == 0


def test_disguised_executable_is_refused_with_415(client, db, world, as_user):
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + os.urandom(256)
    r = client.post(f"/api/v1/patients/{world.patient_id}/attachments", headers=as_user(world.nurse),
                    data={"sheet": "care-note"}, files={"file": ("photo.jpg", exe, "image/jpeg")})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    assert db.query(Attachment).count() == 0


def test_truncated_jpeg_is_refused(client, world, as_user):
    truncated = b"\xff\xd8\xff\xe0" + b"\x00" * 40
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", truncated)
    assert r.status_code == 415


@pytest.fixture
def small_upload_client(settings, connection):
    app = create_app(settings.model_copy(update={"max_upload_bytes": 4096}), bind=connection)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def test_upload_over_the_configured_limit_is_413(small_upload_client, db, world, as_user):
    headers = as_user(world.nurse)
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    assert len(out.getvalue()) > 4096
    r = upload(small_upload_client, headers, world.patient_id, "care-note", out.getvalue())
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    way_over = upload(small_upload_client, headers, world.patient_id, "care-note", b"%PDF-" + b"0" * 200_000)
    assert way_over.status_code == 413
    assert upload(small_upload_client, headers, world.patient_id, "care-note", png_bytes()).status_code == 201
    assert db.query(Attachment).count() == 1


def test_content_and_file_name_are_encrypted_at_rest(client, db, world, as_user):
    r = upload(client, as_user(world.nurse), world.patient_id, "care-note", PDF, "山田花子_診療情報.pdf")
    row = db.get(Attachment, uuid.UUID(r.json()["id"]))
    assert b"%PDF" not in row.content_ct and "診療情報".encode() not in row.content_ct
    assert "山田花子".encode() not in row.filename_ct


def test_team_sees_an_attachment_once_a_posted_entry_references_it(client, world, as_user):
    nurse, doctor = as_user(world.nurse), as_user(world.physician)
    photo = upload(client, nurse, world.patient_id, "care-note", png_bytes()).json()["id"]
    assert download(client, doctor, photo).status_code == 404
    data = example("care-note")
    data["skin"]["photo_attachment_ids"] = [photo]
    posted(client, nurse, world.patient_id, "care-note", data)
    assert download(client, doctor, photo).status_code == 200


def test_someone_elses_unposted_upload_cannot_be_referenced(client, world, as_user):
    photo = upload(client, as_user(world.nurse), world.patient_id, "care-note", png_bytes()).json()["id"]
    data = example("care-note")
    data["skin"]["photo_attachment_ids"] = [photo]
    refused = post(client, as_user(world.physician), world.patient_id, "care-note", data)
    assert refused.status_code == 422


def test_outsiders_and_professions_outside_the_sheet_get_404(client, world, as_user):
    nurse = as_user(world.nurse)
    photo = upload(client, nurse, world.patient_id, "care-note", png_bytes()).json()["id"]
    outsider = as_user(world.outsider)
    assert upload(client, outsider, world.patient_id, "care-note", png_bytes()).status_code == 404
    assert download(client, outsider, photo).status_code == 404
    assert upload(client, nurse, world.patient_id, "physician-visit", png_bytes()).status_code == 404
    unknown = upload(client, nurse, world.patient_id, "x-ray", png_bytes())
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_sheet"
