"""Paper intake under hostile uploads: access is decided before decoding, and decoding is bounded in pixels,
pages, concurrency and per user."""

from __future__ import annotations

import io
import uuid

from PIL import Image
from sqlalchemy import select

from renkei.audit.models import AuditEvent
from renkei.printing import qr, throttle
from renkei.printing.models import PaperIntake
from renkei.printing.render import pdf_page_png
from tests.factories import make_org, make_user
from tests.printing.test_paper_intake import own_patient


def page_only_pdf(pages: int, side_pt: int) -> bytes:
    """A PDF of empty square pages: a couple of kilobytes that ask for side_pt x side_pt points each."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + i} 0 R' for i in range(pages))}] /Count {pages} >>"]
    objects += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {side_pt} {side_pt}] >>"] * pages
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def no_code_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (200, 200), 255).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(client, headers, content: bytes, name: str = "scan.pdf", **form):
    return client.post("/api/v1/paper-intake", files={"file": (name, content)}, data=form,
                       headers={**headers, "accept": "application/json"})


def _denials(db, user) -> list[tuple[str, str, str | None]]:
    db.expire_all()
    return [(row.action, row.reason, row.event) for row in db.scalars(
        select(AuditEvent).where(AuditEvent.actor_user_id == user.id, AuditEvent.decision == "deny"))]


def test_uploader_who_may_file_on_no_patient_is_refused_before_the_upload_is_decoded(client, db, as_user):
    city = make_org(db, "みどり市役所", "municipality")
    coordinator = make_user(db, city, profession="coordinator", name="連携 調整")
    r = _upload(client, as_user(coordinator), page_only_pdf(pages=20, side_pt=2780))
    # Before the access check moved ahead of decoding, this rasterised 20 pages of 60 Mpx and said qr_missing.
    assert r.status_code == 403 and r.json()["error"] == "paper_intake_not_allowed"
    assert _denials(db, coordinator) == [("write_clinical", "no_patient_to_file_on", "paper_intake")]


def test_chosen_patient_the_uploader_may_not_file_on_is_404_before_the_upload_is_decoded(
    client, db, keyring, world, as_user,
):
    own_patient(db, keyring, world.outsider, name="別人 太郎", name_kana="ベツジン タロウ")
    outsider = as_user(world.outsider)
    r = _upload(client, outsider, b"%PDF-1.7 not a PDF at all", patient_id=str(world.patient_id))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert _denials(db, world.outsider) == [("write_clinical", "not_on_team", "paper_intake")]
    unknown = _upload(client, outsider, b"%PDF-1.7 not a PDF at all", patient_id=str(uuid.uuid4()))
    assert unknown.status_code == 404


def test_a_member_who_may_file_gets_past_the_check_and_hears_why_the_file_is_unreadable(
    client, world, as_user,
):
    r = _upload(client, as_user(world.nurse), b"%PDF-1.7 not a PDF at all", patient_id=str(world.patient_id))
    assert r.status_code == 422 and r.json()["error"] == "unreadable_file"


def test_huge_pdf_pages_are_rendered_one_at_a_time_within_the_pixel_budgets():
    pages = qr.pages_of(page_only_pdf(pages=1, side_pt=2780))
    first = next(pages)
    pages.close()
    # 2780 pt at 200 dpi would be 60 Mpx; the page is scaled down to the budget instead of refused.
    assert first.width * first.height <= qr.MAX_PAGE_PIXELS
    assert first.width > 2000
    sizes = [page.width * page.height for page in qr.pages_of(page_only_pdf(pages=10, side_pt=2780))]
    assert len(sizes) == 10 and sum(sizes) <= qr.MAX_TOTAL_PIXELS


def test_pdf_with_more_pages_than_a_form_is_refused_with_a_clear_error(client, db, world, as_user):
    r = _upload(client, as_user(world.physician), page_only_pdf(pages=qr.MAX_PDF_PAGES + 1, side_pt=595))
    assert r.status_code == 422 and r.json()["error"] == "too_many_pages"
    assert r.json()["fields"][0]["path"] == "/file" and r.json()["fields"][0]["message_ja"]


def test_qr_on_an_oversized_pdf_page_is_still_read_and_filed(client, db, world, as_user):
    doctor = as_user(world.physician)
    printed = client.get(f"/print/blank/care-note.pdf?patient_id={world.patient_id}", headers=doctor).content
    page = Image.open(io.BytesIO(pdf_page_png(printed, 0, dpi=100))).convert("L")
    buffer = io.BytesIO()
    # At 25 dpi the A4 page becomes about 84 x 119 cm: 62 Mpx at 200 dpi, refused before the budgets.
    page.save(buffer, "PDF", resolution=25)
    r = _upload(client, doctor, buffer.getvalue())
    assert r.status_code == 201, r.text
    assert db.get(PaperIntake, uuid.UUID(r.json()["id"])).patient_id == world.patient_id


def test_intakes_beyond_the_per_user_limit_get_429_with_retry_after(client, world, as_user):
    doctor = as_user(world.physician)
    for _ in range(throttle.PER_USER):
        assert _upload(client, doctor, no_code_png(), "scan.png").json()["error"] == "qr_missing"
    r = _upload(client, doctor, no_code_png(), "scan.png")
    assert r.status_code == 429 and r.json()["error"] == "paper_intake_rate_limited"
    assert 0 < int(r.headers["retry-after"]) <= throttle.WINDOW_SECONDS + 1
    assert _upload(client, as_user(world.nurse), no_code_png(), "scan.png").json()["error"] == "qr_missing"


def test_intake_answers_503_while_every_decoding_slot_stays_busy(client, world, as_user):
    nurse = as_user(world.nurse)
    taken = 0
    try:
        while throttle.GATE.slots.acquire(blocking=False):
            taken += 1
        busy = _upload(client, nurse, no_code_png(), "scan.png")
    finally:
        for _ in range(taken):
            throttle.GATE.slots.release()
    assert taken == throttle.CONCURRENT
    assert busy.status_code == 503 and busy.json()["error"] == "paper_intake_busy"
    assert int(busy.headers["retry-after"]) > 0
    assert _upload(client, nurse, no_code_png(), "scan.png").json()["error"] == "qr_missing"


def test_a_108_megapixel_photo_of_a_form_is_read_at_reduced_scale_and_filed(client, world, as_user):
    doctor = as_user(world.physician)
    printed = client.get(f"/print/blank/care-note.pdf?patient_id={world.patient_id}", headers=doctor).content
    page = Image.open(io.BytesIO(pdf_page_png(printed, 0, dpi=150))).convert("L")
    frame = Image.new("L", (12000, 9000), 255)  # a 108 Mpx phone mode, the form in the middle of the frame
    frame.paste(page.resize((page.width * 3, page.height * 3)).rotate(90, expand=True), (1500, 500))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=70)
    del frame
    r = _upload(client, doctor, buffer.getvalue(), "IMG_0001.jpg")
    assert r.status_code == 201, r.text
    stored = client.get(f"/api/v1/attachments/{r.json()['attachment_id']}", headers=doctor)
    assert Image.open(io.BytesIO(stored.content)).size == (6000, 4500)
