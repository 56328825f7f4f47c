"""The QR reference: compact, signed, without personal data; any change or another key is refused."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from renkei.printing import reference

KEY = os.urandom(32)


def test_reference_round_trips_and_is_compact_alphanumeric_text():
    ref = reference.PrintReference(uuid.uuid4(), uuid.uuid4(), "admission-info", 1)
    text = reference.sign(KEY, ref)
    assert reference.verify(KEY, text) == ref
    assert re.fullmatch(r"RK1:[A-Z2-7]+", text) and len(text) <= 120


def test_fully_blank_reference_names_no_patient():
    ref = reference.PrintReference(uuid.uuid4(), None, "care-note", 1)
    assert reference.verify(KEY, reference.sign(KEY, ref)).patient_id is None


def test_every_single_character_change_is_refused():
    text = reference.sign(KEY, reference.PrintReference(uuid.uuid4(), uuid.uuid4(), "acp", 1))
    for i in range(len("RK1:"), len(text)):
        changed = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
        with pytest.raises(reference.BadReference):
            reference.verify(KEY, changed)


def test_reference_signed_by_another_installation_is_forged_here():
    text = reference.sign(os.urandom(32), reference.PrintReference(uuid.uuid4(), uuid.uuid4(), "acp", 1))
    with pytest.raises(reference.ForgedReference):
        reference.verify(KEY, text)


def test_reference_key_is_derived_per_key_file_and_differs_from_the_token_key(keyring):
    key = reference.reference_key(keyring)
    assert len(key) == 32 and key not in (keyring.token_key, keyring.audit_key)
    assert reference.reference_key(keyring) == key
