"""Attachments: type sniffed from the bytes, size-limited, photo metadata (EXIF/GPS) stripped, encrypted.

Photos are decoded within the pixel budget of `renkei.web.images` (a large JPEG is stored reduced, any
other image over the budget is refused with 413) and re-encoded without metadata. HEIC photos (HEVC-coded
HEIF, from iPhone and iPad cameras) are stored as JPEG, upright and without EXIF: every tablet's browser shows
a JPEG, and their location goes with the rest of the metadata. Other HEIF files (AVIF and the like) are 415.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.access import service as access
from renkei.access.service import Action
from renkei.auth.service import Actor
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.types import new_id, utcnow
from renkei.errors import NotFound, PayloadTooLarge, UnsupportedMediaType
from renkei.patients import keys
from renkei.sheets import service as sheets
from renkei.sheets.registry import SheetRegistry
from renkei.timeline import guard, paper
from renkei.timeline.models import Attachment, TimelineEntry
from renkei.timeline.schemas import AttachmentOut
from renkei.web import images

CONTENT_AAD = "attachment.content_ct"
FILENAME_AAD = "attachment.filename_ct"
CHUNK = 1 << 20
# ISO/IEC 23008-12 brands of HEVC-coded images and sequences; mif1/msf1 only say "some HEIF", so with them
# the compatible brands must name HEVC (and not AV1, whose AVIF files the HEVC decoder cannot read).
HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
AV1_BRANDS = frozenset({b"avif", b"avis"})
SNIFF_BYTES = 64
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic", "application/pdf": "pdf"}


@dataclass(frozen=True)
class AttachmentContent:
    id: uuid.UUID
    content_type: str
    data: bytes

    @property
    def download_name(self) -> str:
        # The original file name may hold a patient's name, so it never goes into a header.
        return f"{self.id}.{EXTENSIONS[self.content_type]}"


def sniff(head: bytes) -> str | None:
    """The content type the bytes really have (JPEG, PNG, HEIC, PDF), whatever the name or header claims."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if len(head) >= 12 and head[4:8] == b"ftyp" and _is_heic(head):
        return "image/heic"
    return None


def _is_heic(head: bytes) -> bool:
    """An ISO-BMFF `ftyp` box whose brands say HEVC-coded HEIF (major brand, then compatible brands)."""
    box_size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in HEVC_BRANDS:
        return True
    return major in GENERIC_HEIF_BRANDS and bool(compatible & HEVC_BRANDS) and not compatible & AV1_BRANDS


def read_limited(stream: BinaryIO, limit: int) -> bytes:
    """Read an upload, refusing (413) as soon as it passes the limit."""
    buf = bytearray()
    while chunk := stream.read(CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"Files may be at most {limit} bytes")
    return bytes(buf)


def upload(
    session: Session, *, keyring: Keyring, registry: SheetRegistry, settings: Settings, actor: Actor,
    patient_id: uuid.UUID, sheet_id: str, filename: str, content: bytes,
) -> AttachmentOut:
    """Store a file for the sheet the actor is filling in; 413 too large, 415 not a supported type."""
    sheet = sheets.resolve(registry, sheet_id, None)
    decision = guard.require(session, actor, Action.write_clinical, patient_id, category=sheet.category,
                             sheet_id=sheet.id)
    if len(content) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"Files may be at most {settings.max_upload_bytes} bytes")
    content_type = sniff(content[:SNIFF_BYTES])
    if content_type is None:
        raise UnsupportedMediaType("Only JPEG, PNG, HEIC and PDF files are accepted")
    if content_type != "application/pdf":
        content, content_type = images.normalise(content, content_type)
    attachment = Attachment(id=new_id(), patient_id=patient_id, uploaded_by=actor.user_id,
                            content_type=content_type, size=len(content), filename_ct=b"", content_ct=b"",
                            created_at=utcnow(), sheet_id=sheet.id, category=sheet.category)
    binding = str(attachment.id)
    attachment.filename_ct = keys.seal_json(session, keyring, patient_id, aad=FILENAME_AAD, binding=binding,
                                            value=filename[:255])
    attachment.content_ct = keys.seal_bytes(session, keyring, patient_id, aad=CONTENT_AAD, binding=binding,
                                            data=content)
    session.add(attachment)
    session.flush()
    access.disclosed(decision, [attachment.id])
    return _out(attachment)


def download(
    session: Session, *, keyring: Keyring, registry: SheetRegistry, actor: Actor, attachment_id: uuid.UUID
) -> AttachmentContent:
    """The decrypted file: for its uploader, or for the team once a posted entry references it. The image of
    a paper form also needs every category of the sheet's parts (it shows all of them)."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound()
    # Decided (and audited) first: a refused attempt on someone else's unposted upload stays on record too.
    decision = guard.require(session, actor, Action.read_clinical, attachment.patient_id,
                             category=attachment.category, sheet_id=attachment.sheet_id,
                             targets=[attachment.id])
    if attachment.linked_at is None and attachment.uploaded_by != actor.user_id:
        raise NotFound()
    form = session.execute(select(TimelineEntry.sheet_id, TimelineEntry.sheet_version).where(
        TimelineEntry.paper_attachment_id == attachment.id).limit(1)).first()
    if form is not None and paper.image_withheld(registry, form[0], form[1], decision.categories):
        raise NotFound()
    data = keys.open_bytes(session, keyring, attachment.patient_id, attachment.content_ct, aad=CONTENT_AAD,
                           binding=str(attachment.id))
    return AttachmentContent(attachment.id, attachment.content_type, data)


def _out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(id=attachment.id, patient_id=attachment.patient_id, sheet=attachment.sheet_id,
                         content_type=attachment.content_type,
                         size=attachment.size, created_at=attachment.created_at,
                         metadata_stripped=attachment.content_type in images.FORMATS)
