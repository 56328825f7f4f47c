"""Helpers for the paper-intake tests: print through the API, photograph a page, upload it."""

from __future__ import annotations

import io
import random
import uuid

import qrcode
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from renkei.crypto.keyring import Keyring
from renkei.directory.models import User
from renkei.printing.render import pdf_page_png
from tests.factories import grant_consent, make_patient


def printout(client: TestClient, headers: dict[str, str], url: str) -> bytes:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    return r.content


def photo(pdf: bytes, page: int = 0) -> bytes:
    """A page as a phone might deliver it: rasterised, slightly rotated, JPEG-compressed."""
    image = Image.open(io.BytesIO(pdf_page_png(pdf, page, dpi=150))).convert("RGB").rotate(
        2, expand=True, fillcolor="white")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def qr_png(text: str, *, damaged: bool = False) -> bytes:
    """A QR code of `text`; `damaged` scribbles over its data modules (the finder patterns stay)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4, box_size=8)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image().convert("L")
    if damaged:
        draw, rng = ImageDraw.Draw(image), random.Random(1)
        width, height = image.size
        for _ in range(160):
            x, y = rng.randint(int(width * 0.3), int(width * 0.95)), rng.randint(int(height * 0.3), int(height * 0.95))
            draw.rectangle([x, y, x + 8, y + 8], fill=rng.choice([0, 255]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def side_by_side(*pngs: bytes) -> bytes:
    """Several images in one photo, left to right."""
    images = [Image.open(io.BytesIO(p)).convert("L") for p in pngs]
    canvas = Image.new("L", (sum(i.width for i in images) + 40 * len(images), max(i.height for i in images) + 40),
                       255)
    x = 20
    for image in images:
        canvas.paste(image, (x, 20))
        x += image.width + 40
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def intake(client: TestClient, headers: dict[str, str], content: bytes, name: str = "scan.jpg", **form: str):
    return client.post("/api/v1/paper-intake", files={"file": (name, content)}, data=form,
                       headers={**headers, "accept": "application/json"})


def own_patient(db: Session, keyring: Keyring, user: User, **identity: object) -> uuid.UUID:
    """A second patient registered by `user`, with a blanket consent: the user may file records on it."""
    role = "care_manager" if user.profession == "care_manager" else "attending_physician"
    patient_id = make_patient(db, keyring, user, team_role=role, care_insurance_number=None,
                              health_insurance_number=None, **identity)
    grant_consent(db, keyring, patient_id, user)
    return patient_id
