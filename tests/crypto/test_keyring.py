"""The key file and the keyring: file mode, refusal of bad files, KEK changes made by another process."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest

from renkei.app import create_app
from renkei.config import Settings
from renkei.crypto import keyfile
from renkei.crypto.aead import DecryptionError
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile, prune_keks, rotate_kek

OWNER = "3f2b9c1e-8a4d-4f6b-9e21-7c5d0a1b2c3d"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_development_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "keys.json"
    old_umask = os.umask(0o022)
    try:
        assert ensure_dev_keyfile(path) is True
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    content = path.read_bytes()
    assert ensure_dev_keyfile(path) is False
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"], "no temporary file is left behind"


def test_app_start_in_development_creates_a_0600_key_file(tmp_path):
    settings = Settings(environment="development", var_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db")
    create_app(settings)
    assert settings.key_file == tmp_path / "keys.json"
    assert _mode(settings.key_file) == 0o600
    material = keyfile.load(settings.key_file)
    assert len(material.keks[material.current_kek]) == 32


def test_rewriting_the_key_file_keeps_mode_0600(tmp_path):
    path = tmp_path / "keys.json"
    ensure_dev_keyfile(path)
    os.chmod(path, 0o644)
    rotate_kek(path)
    assert _mode(path) == 0o600


def _write(path, **changes) -> None:
    ensure_dev_keyfile(path)
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": 2}, "unsupported key file format"),
    ({"current_kek": "kek-missing"}, "is not in the file"),
    ({"keks": {"kek-short": "AAAA"}, "current_kek": "kek-short"}, "every KEK must be 256 bits"),
    ({"index_key": "not base64!"}, "malformed key file"),
    ({"audit_key": None}, "malformed key file"),
    ({"retired": {"kek-unknown": "2026-01-01T00:00:00+00:00"}}, "retired KEKs must be in the file"),
    ({"retired": {"kek-x": "yesterday"}}, "malformed key file"),
])
def test_malformed_key_file_is_refused_rather_than_half_loaded(tmp_path, changes, message):
    path = tmp_path / "keys.json"
    _write(path, **changes)
    with pytest.raises(keyfile.KeyFileError, match=message):
        Keyring.open(path)


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"format": 1}'])
def test_key_file_that_is_not_a_key_object_is_refused(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(keyfile.KeyFileError):
        Keyring.open(path)


def test_missing_key_file_is_refused_with_its_path_only(tmp_path):
    with pytest.raises(keyfile.KeyFileError, match="key file not found"):
        Keyring.open(tmp_path / "absent.json")


def _ring(tmp_path) -> Keyring:
    path = tmp_path / "keys.json"
    ensure_dev_keyfile(path)
    return Keyring.open(path)


def test_unwrapping_with_a_kek_added_by_another_process_reloads_the_key_file(tmp_path):
    ring = _ring(tmp_path)
    other_process = Keyring.open(ring.path)
    new_kek, _ = rotate_kek(ring.path)
    other_process.reload()
    data_key = Keyring.new_data_key()
    kek_id, wrapped = other_process.wrap(data_key, owner=OWNER, key_id="dk-1")
    assert kek_id == new_kek and new_kek not in ring.kek_ids
    assert ring.unwrap(kek_id, wrapped, owner=OWNER, key_id="dk-1") == data_key
    assert ring.current_kek_id == new_kek


def test_wrapping_after_another_process_rotated_uses_the_new_kek(tmp_path):
    ring = _ring(tmp_path)
    old_kek = ring.current_kek_id
    new_kek, _ = rotate_kek(ring.path)
    kek_id, wrapped = ring.wrap(Keyring.new_data_key(), owner=OWNER, key_id="dk-2")
    assert kek_id == new_kek != old_kek
    assert Keyring.open(ring.path).unwrap(kek_id, wrapped, owner=OWNER, key_id="dk-2")


def test_read_that_began_before_a_rotation_finished_still_unwraps_with_the_retired_kek(tmp_path):
    # Under PostgreSQL's snapshots a request may hold a row still wrapped by the old KEK while
    # another request has already made this process reload the key file without it.
    ring = _ring(tmp_path)
    data_key = Keyring.new_data_key()
    old_kek, wrapped_old = ring.wrap(data_key, owner=OWNER, key_id="dk-3")
    new_kek, _ = rotate_kek(ring.path)
    prune_keks(ring.path, in_use=set(), grace=timedelta(0))
    ring.reload()
    assert ring.kek_ids == [new_kek]
    assert ring.unwrap(old_kek, wrapped_old, owner=OWNER, key_id="dk-3") == data_key
    with pytest.raises(DecryptionError, match="not in the key file"):
        Keyring.open(ring.path).unwrap(old_kek, wrapped_old, owner=OWNER, key_id="dk-3")


def test_rotation_keeps_the_old_kek_retired_for_unwrapping_and_never_wraps_with_it(tmp_path):
    ring = _ring(tmp_path)
    data_key = Keyring.new_data_key()
    old_kek, wrapped_old = ring.wrap(data_key, owner=OWNER, key_id="dk-5")
    new_kek, _ = rotate_kek(ring.path)
    restarted = Keyring.open(ring.path)
    assert restarted.kek_ids == [old_kek, new_kek] and list(restarted.retired_keks) == [old_kek]
    assert restarted.unwrap(old_kek, wrapped_old, owner=OWNER, key_id="dk-5") == data_key
    assert {restarted.wrap(data_key, owner=OWNER, key_id=f"dk-{i}")[0] for i in range(5)} == {new_kek}
    assert ring.wrap(data_key, owner=OWNER, key_id="dk-6")[0] == new_kek, "a running server sees the new file"


def test_pruning_keeps_retired_keks_in_use_or_inside_the_grace_period(tmp_path):
    ring = _ring(tmp_path)
    first = ring.current_kek_id
    second, _ = rotate_kek(ring.path)
    rotate_kek(ring.path)
    assert prune_keks(ring.path, in_use=set(), grace=timedelta(hours=1)) == ([], [first, second])
    assert prune_keks(ring.path, in_use={second}, grace=timedelta(0)) == ([first], [second])
    assert prune_keks(ring.path, in_use=set(), grace=timedelta(0)) == ([second], [])
    material = keyfile.load(ring.path)
    assert list(material.keks) == [material.current_kek] and material.retired == {}


@pytest.mark.parametrize("position", [0, 11, 12, 30, -1])
def test_tampered_wrapped_data_key_fails_closed(tmp_path, position):
    ring = _ring(tmp_path)
    kek_id, wrapped = ring.wrap(Keyring.new_data_key(), owner=OWNER, key_id="dk-4")
    tampered = bytearray(wrapped)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptionError, match="unwrap failed"):
        Keyring.open(ring.path).unwrap(kek_id, bytes(tampered), owner=OWNER, key_id="dk-4")


def test_wrapped_data_key_is_bound_to_its_key_id(tmp_path):
    ring = _ring(tmp_path)
    kek_id, wrapped = ring.wrap(Keyring.new_data_key(), owner=OWNER, key_id="dk-5")
    with pytest.raises(DecryptionError):
        Keyring.open(ring.path).unwrap(kek_id, wrapped, owner=OWNER, key_id="dk-6")


def test_secrets_and_blind_indexes_are_keyed_separately_from_patient_data(tmp_path):
    ring = _ring(tmp_path)
    other = Keyring.open(tmp_path / "other.json") if ensure_dev_keyfile(tmp_path / "other.json") else None
    assert other is not None
    assert ring.blind_index("insurance", "0000123456") == Keyring.open(ring.path).blind_index("insurance",
                                                                                              "0000123456")
    assert ring.blind_index("insurance", "0000123456") != other.blind_index("insurance", "0000123456")
    assert ring.blind_index("insurance", "0000123456") != ring.blind_index("kana_birth", "0000123456")
    blob = ring.seal_secret(aad="user_account.totp_secret", binding="u1", payload=b"JBSWY3DP")
    assert ring.open_secret(blob, aad="user_account.totp_secret", binding="u1") == b"JBSWY3DP"
    with pytest.raises(DecryptionError):
        ring.open_secret(blob, aad="user_account.totp_secret", binding="u2")
    with pytest.raises(DecryptionError):
        other.open_secret(blob, aad="user_account.totp_secret", binding="u1")
