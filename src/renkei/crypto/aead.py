"""AES-256-GCM with a versioned envelope: version | key id | nonce | ciphertext+tag.

The plaintext carries a binding (the owning row's id) that is checked after decryption, so a
ciphertext copied to another row fails even though it was produced with the right key.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
NONCE_BYTES = 12


class DecryptionError(Exception):
    """Ciphertext could not be authenticated or does not belong where it was found."""


def seal(key: bytes, key_id: str, *, aad: str, binding: str, payload: bytes) -> bytes:
    """Encrypt payload bound to (aad, binding) with a fresh random nonce."""
    kid = key_id.encode("ascii")
    if len(kid) > 255:
        raise ValueError("key id too long")
    bind = binding.encode("utf-8")
    plaintext = struct.pack(">H", len(bind)) + bind + payload
    nonce = os.urandom(NONCE_BYTES)
    ct = AESGCM(key).encrypt(nonce, plaintext, _aad(aad, kid))
    return bytes([FORMAT_VERSION, len(kid)]) + kid + nonce + ct


def key_id_of(blob: bytes) -> str:
    """Return the key id recorded in an envelope without decrypting it."""
    if len(blob) < 2 or blob[0] != FORMAT_VERSION:
        raise DecryptionError("unknown envelope version")
    n = blob[1]
    if len(blob) < 2 + n + NONCE_BYTES + 16:
        raise DecryptionError("truncated envelope")
    try:
        return blob[2 : 2 + n].decode("ascii")
    except UnicodeDecodeError as exc:
        # A corrupted length or key id byte must fail closed like any other tampering, not crash.
        raise DecryptionError("malformed key id") from exc


def open_(key: bytes, blob: bytes, *, aad: str, binding: str) -> bytes:
    """Decrypt and check the binding; fail closed on any mismatch."""
    return Opener(key).open(blob, aad=aad, binding=binding)


class Opener:
    """`open_` with one key, for many envelopes: the cipher is set up once (a page of a patient's entries)."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)

    def open(self, blob: bytes, *, aad: str, binding: str) -> bytes:
        """Decrypt and check the binding; fail closed on any mismatch."""
        kid = key_id_of(blob).encode("ascii")
        start = 2 + len(kid)
        nonce, ct = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            plaintext = self._cipher.decrypt(nonce, ct, _aad(aad, kid))
        except InvalidTag as exc:
            raise DecryptionError("authentication failed") from exc
        (n,) = struct.unpack(">H", plaintext[:2])
        if plaintext[2 : 2 + n].decode("utf-8") != binding:
            raise DecryptionError("ciphertext belongs to another row")
        return plaintext[2 + n :]


def _aad(aad: str, kid: bytes) -> bytes:
    return b"renkei/v1|" + aad.encode("ascii") + b"|" + kid
