"""The AEAD envelope: version | key id | nonce | ciphertext+tag, bound to (table.column, row)."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from renkei.crypto import aead
from renkei.crypto.aead import DecryptionError

KEY = bytes(range(32))
KEY_ID = "dk-0123456789abcdef"
AAD = "patient.identity_ct"
BINDING = "patient:6f1c1f7e-5d1b-4a8e-9d43-2f0e8f1f9a10"
PAYLOAD = "山田 花子 / ヤマダ ハナコ / 0000123456".encode()

_ascii_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60)


def _seal(payload: bytes = PAYLOAD, **kw: str) -> bytes:
    return aead.seal(kw.get("key", KEY), kw.get("key_id", KEY_ID), aad=kw.get("aad", AAD),
                     binding=kw.get("binding", BINDING), payload=payload)


def test_sealed_payload_opens_to_the_same_bytes():
    blob = _seal()
    assert aead.open_(KEY, blob, aad=AAD, binding=BINDING) == PAYLOAD
    assert PAYLOAD not in blob
    assert aead.key_id_of(blob) == KEY_ID


def test_envelope_layout_is_version_key_id_nonce_then_ciphertext_and_tag():
    blob = _seal()
    assert blob[0] == aead.FORMAT_VERSION
    assert blob[1] == len(KEY_ID)
    assert blob[2 : 2 + len(KEY_ID)] == KEY_ID.encode()
    # 2-byte binding length + binding + payload, then the 16-byte GCM tag.
    body = len(blob) - 2 - len(KEY_ID) - aead.NONCE_BYTES
    assert body == 2 + len(BINDING.encode()) + len(PAYLOAD) + 16


def test_same_plaintext_sealed_twice_gives_different_nonces_and_ciphertexts():
    blobs = [_seal() for _ in range(50)]
    start = 2 + len(KEY_ID)
    nonces = {b[start : start + aead.NONCE_BYTES] for b in blobs}
    assert len(nonces) == 50
    assert len(set(blobs)) == 50


def test_flipping_any_byte_of_the_envelope_fails_closed():
    blob = _seal(b"short clinical note")
    for position in range(len(blob)):
        for mask in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= mask
            with pytest.raises(DecryptionError):
                aead.open_(KEY, bytes(tampered), aad=AAD, binding=BINDING)


@pytest.mark.parametrize("cut", [0, 1, 2, 10, 20, 30, -1, -16])
def test_truncated_envelope_fails_closed(cut):
    blob = _seal()
    with pytest.raises(DecryptionError):
        aead.open_(KEY, blob[:cut], aad=AAD, binding=BINDING)


def test_appended_bytes_fail_closed():
    with pytest.raises(DecryptionError):
        aead.open_(KEY, _seal() + b"\x00", aad=AAD, binding=BINDING)


def test_ciphertext_copied_to_another_row_fails_even_with_the_right_key():
    blob = _seal()
    with pytest.raises(DecryptionError, match="another row"):
        aead.open_(KEY, blob, aad=AAD, binding="patient:00000000-0000-0000-0000-000000000000")


def test_ciphertext_copied_to_another_column_fails():
    blob = _seal()
    with pytest.raises(DecryptionError):
        aead.open_(KEY, blob, aad="timeline_entry.data_ct", binding=BINDING)


def test_ciphertext_opened_with_another_key_fails():
    with pytest.raises(DecryptionError):
        aead.open_(os.urandom(32), _seal(), aad=AAD, binding=BINDING)


def test_key_id_is_authenticated_so_relabelling_the_envelope_fails():
    blob = _seal(key_id="dk-aaaaaaaaaaaaaaaa")
    relabelled = blob.replace(b"dk-aaaaaaaaaaaaaaaa", b"dk-bbbbbbbbbbbbbbbb")
    assert aead.key_id_of(relabelled) == "dk-bbbbbbbbbbbbbbbb"
    with pytest.raises(DecryptionError):
        aead.open_(KEY, relabelled, aad=AAD, binding=BINDING)


@given(
    payload=st.binary(max_size=4096),
    binding=st.text(max_size=200),
    aad=_ascii_ids,
    key_id=_ascii_ids,
    key=st.binary(min_size=32, max_size=32),
)
def test_open_of_seal_is_identity_for_any_payload_binding_and_column(payload, binding, aad, key_id, key):
    blob = aead.seal(key, key_id, aad=aad, binding=binding, payload=payload)
    assert aead.open_(key, blob, aad=aad, binding=binding) == payload
    assert aead.key_id_of(blob) == key_id


@given(payload=st.binary(max_size=256), binding=st.text(min_size=1, max_size=50),
       other=st.text(min_size=1, max_size=50))
def test_a_different_binding_never_opens(payload, binding, other):
    assume(other != binding)
    blob = aead.seal(KEY, KEY_ID, aad=AAD, binding=binding, payload=payload)
    with pytest.raises(DecryptionError):
        aead.open_(KEY, blob, aad=AAD, binding=other)
