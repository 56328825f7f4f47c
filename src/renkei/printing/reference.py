"""Signed print references: what the QR code on every printed form says.

Layout (before base32): format byte | print id (16) | patient id (16, zero for a fully blank form) |
form version (2) | form id length (1) | form id (ASCII) | HMAC-SHA256 truncated to 16 bytes.
Only random ids and the public form id are in it: no name, birth date or any other personal data,
so a photographed form leaks nothing through its code. The text is "RK1:" + base32 without padding,
which fits the QR alphanumeric mode and so scans well from a phone photo or a fax.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from renkei.crypto.keyring import Keyring

PREFIX = "RK1:"
FORMAT = 1
MAC_BYTES = 16
FORM_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")
_NO_PATIENT = uuid.UUID(int=0)


class BadReference(ValueError):
    """Base of the reasons a scanned reference is refused."""


class MalformedReference(BadReference):
    """The text is not a Renkei print reference at all."""


class ForgedReference(BadReference):
    """The text looks like a reference but its MAC does not verify under this installation's key."""


@dataclass(frozen=True)
class PrintReference:
    print_id: uuid.UUID
    patient_id: uuid.UUID | None
    form_id: str
    form_version: int


def reference_key(keyring: Keyring) -> bytes:
    """A key used for nothing else, derived so that no new field is needed in the key file.

    HKDF with its own label makes it independent of the audit key it is derived from: knowing one
    reveals nothing about the other, and it is stable for as long as the key file is.
    """
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"renkei", info=b"print-reference-v1").derive(
        keyring.audit_key
    )


def _body(ref: PrintReference) -> bytes:
    if not FORM_ID.fullmatch(ref.form_id):
        raise ValueError("form id must be a short lower-case ASCII id")
    if not 0 < ref.form_version < 2**16:
        raise ValueError("form version out of range")
    form = ref.form_id.encode("ascii")
    return (
        bytes([FORMAT])
        + ref.print_id.bytes
        + (ref.patient_id or _NO_PATIENT).bytes
        + ref.form_version.to_bytes(2, "big")
        + bytes([len(form)])
        + form
    )


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"renkei-print\x1f" + body, hashlib.sha256).digest()[:MAC_BYTES]


def sign(key: bytes, ref: PrintReference) -> str:
    """The QR text for a reference."""
    body = _body(ref)
    return PREFIX + base64.b32encode(body + _mac(key, body)).decode("ascii").rstrip("=")


def verify(key: bytes, text: str) -> PrintReference:
    """Parse and authenticate a scanned reference; raise MalformedReference or ForgedReference."""
    text = text.strip()
    if not text.upper().startswith(PREFIX):
        raise MalformedReference("not a Renkei print reference")
    encoded = text[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError) as exc:
        raise MalformedReference("reference is not valid base32") from exc
    if len(raw) < 1 + 16 + 16 + 2 + 1 + 1 + MAC_BYTES or raw[0] != FORMAT:
        raise MalformedReference("unknown reference format")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise ForgedReference("reference signature does not verify")
    form_len = body[35]
    form = body[36:]
    if len(form) != form_len:
        raise MalformedReference("reference length mismatch")
    patient_id = uuid.UUID(bytes=body[17:33])
    return PrintReference(
        print_id=uuid.UUID(bytes=body[1:17]),
        patient_id=None if patient_id == _NO_PATIENT else patient_id,
        form_id=form.decode("ascii"),
        form_version=int.from_bytes(body[33:35], "big"),
    )
