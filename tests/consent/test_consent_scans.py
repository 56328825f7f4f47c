"""The signed consent form's photo: stored without EXIF/GPS, within the same pixel budget as attachments."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from renkei.consent.models import ConsentDocument
from tests.factories import auth_headers


@pytest.fixture
def doctor(db, settings, keyring, world):
    return auth_headers(db, settings, keyring, world.physician)


def phone_photo() -> bytes:
    """A photo of the signed form taken in the patient's home: GPS position, camera make, rotated."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TabletCam"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (35.0, 41.0, 22.5),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (139.0, 41.0, 30.0),
    }
    out = io.BytesIO()
    Image.new("RGB", (60, 30), (240, 240, 240)).save(out, "JPEG", exif=exif.tobytes(), comment=b"home visit")
    return out.getvalue()


def test_photo_of_the_signed_form_is_stored_without_exif_or_location(client, db, world, doctor):
    base = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments"
    r = client.post(base, headers=doctor, files={"file": ("IMG_0001.jpg", phone_photo(), "image/jpeg")})
    assert r.status_code == 201, r.text
    back = client.get(f"{base}/{r.json()['id']}", headers=doctor).content
    assert b"Exif" not in back and b"TabletCam" not in back and b"home visit" not in back
    image = Image.open(io.BytesIO(back))
    assert image.size == (30, 60)  # turned upright before the orientation tag went
    assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert r.json()["size"] == len(back) == db.get(ConsentDocument, uuid.UUID(r.json()["id"])).size


def test_tablet_signature_png_loses_its_text_chunks(client, world, doctor):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "署名場所 35.68,139.69")
    out = io.BytesIO()
    Image.new("L", (40, 20), 255).save(out, "PNG", pnginfo=info)
    base = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments"
    r = client.post(base, headers=doctor, files={"file": ("signature.png", out.getvalue(), "image/png")})
    assert r.status_code == 201, r.text
    back = client.get(f"{base}/{r.json()['id']}", headers=doctor).content
    assert back.startswith(b"\x89PNG") and b"tEXt" not in back and "署名場所".encode() not in back


def test_scan_over_the_pixel_budget_is_refused_with_413(client, world, doctor):
    out = io.BytesIO()
    Image.new("1", (7000, 6000), 1).save(out, "PNG")
    base = f"/api/v1/patients/{world.patient_id}/consents/{world.consent_id}/attachments"
    r = client.post(base, headers=doctor, files={"file": ("scan.png", out.getvalue(), "image/png")})
    assert r.status_code == 413 and r.json()["fields"][0]["path"] == "/file"
