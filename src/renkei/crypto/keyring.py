"""The keyring: wraps per-patient data keys with the KEK and caches unwrapped ones in memory."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from renkei.crypto import aead, blind_index, keyfile
from renkei.crypto.aead import DecryptionError

CACHE_SIZE = 20_000


class Keyring:
    """Holds key material loaded from the key file; reloads it when it meets a KEK id it does not know."""

    def __init__(self, path: Path, material: keyfile.KeyMaterial, *, stamp: object = None) -> None:
        self.path = Path(path)
        self._material = material
        self._stamp = stamp if stamp is not None else _file_stamp(self.path)
        # KEKs that left the key file while this process ran: a read whose transaction began before a
        # rotation finished may still meet a data key wrapped by one of them.
        self._retired: dict[str, bytes] = {}
        self._lock = threading.Lock()
        # key id -> (owner, data key); the owner is checked on every hit so the cache never hands a
        # data key to a different patient than the one it was unwrapped for.
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    @classmethod
    def open(cls, path: Path) -> Keyring:
        # Stamp before reading: a change in between makes the next check reload, never miss it.
        stamp = _file_stamp(Path(path))
        return cls(path, keyfile.load(path), stamp=stamp)

    @property
    def current_kek_id(self) -> str:
        return self._material.current_kek

    @property
    def kek_ids(self) -> list[str]:
        return list(self._material.keks)

    @property
    def retired_keks(self) -> dict[str, str]:
        """Retired KEK ids (still in the file, for unwrapping only) and when they were retired."""
        return dict(self._material.retired)

    @property
    def token_key(self) -> bytes:
        return self._material.token_key

    @property
    def audit_key(self) -> bytes:
        return self._material.audit_key

    @property
    def checkpoint_key(self) -> bytes:
        return self._material.checkpoint_key

    def reload(self) -> None:
        """Re-read the key file (after `renkei keys rotate` ran in another process)."""
        with self._lock:
            stamp = _file_stamp(self.path)
            material = keyfile.load(self.path)
            for kek_id, kek in self._material.keks.items():
                if kek_id not in material.keks:
                    self._retired[kek_id] = kek
            self._material, self._stamp = material, stamp

    def _refresh_if_changed(self) -> None:
        if _file_stamp(self.path) != self._stamp:
            self.reload()

    def _kek(self, kek_id: str) -> bytes | None:
        return self._material.keks.get(kek_id) or self._retired.get(kek_id)

    # -- data keys -------------------------------------------------------------------------

    @staticmethod
    def new_data_key() -> bytes:
        return os.urandom(32)

    def wrap(self, data_key: bytes, *, owner: str, key_id: str) -> tuple[str, bytes]:
        """Wrap a data key under the current KEK; returns (kek id, nonce+ciphertext)."""
        # A long-running server must not keep wrapping new keys under a KEK that a rotation in
        # another process has since retired: those patients would be unreadable after a restart.
        self._refresh_if_changed()
        material = self._material
        kek_id = material.current_kek
        nonce = os.urandom(12)
        ct = AESGCM(material.keks[kek_id]).encrypt(nonce, data_key, _wrap_aad(owner, key_id))
        return kek_id, nonce + ct

    def unwrap(self, kek_id: str, wrapped: bytes, *, owner: str, key_id: str) -> bytes:
        """Unwrap a data key, consulting the in-memory cache first."""
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is not None and cached[0] == owner:
                self._cache.move_to_end(key_id)
                return cached[1]
        kek = self._kek(kek_id)
        if kek is None:
            self.reload()
            kek = self._kek(kek_id)
            if kek is None:
                raise DecryptionError(f"KEK {kek_id} is not in the key file")
        try:
            data_key = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], _wrap_aad(owner, key_id))
        except InvalidTag as exc:
            raise DecryptionError("data key unwrap failed") from exc
        with self._lock:
            self._cache[key_id] = (owner, data_key)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return data_key

    def forget(self, key_id: str) -> None:
        """Drop a data key from the cache (crypto-shredding)."""
        with self._lock:
            self._cache.pop(key_id, None)

    # -- non-patient secrets and indexes ---------------------------------------------------

    def seal_secret(self, *, aad: str, binding: str, payload: bytes) -> bytes:
        return aead.seal(self._material.secret_key, "sys", aad=aad, binding=binding, payload=payload)

    def open_secret(self, blob: bytes, *, aad: str, binding: str) -> bytes:
        return aead.open_(self._material.secret_key, blob, aad=aad, binding=binding)

    def blind_index(self, kind: str, normalised_value: str) -> str:
        return blind_index.digest(self._material.index_key, kind, normalised_value)


def _wrap_aad(owner: str, key_id: str) -> bytes:
    return f"renkei/dk|{owner}|{key_id}".encode()


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """Cheap change detector: the key file is replaced atomically, so its inode and mtime change."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def ensure_dev_keyfile(path: Path) -> bool:
    """Create a development key file if none exists; returns True when one was created."""
    path = Path(path)
    if path.exists():
        return False
    keyfile.save(path, keyfile.generate())
    return True


def rotate_kek(path: Path) -> tuple[str, keyfile.KeyMaterial]:
    """Add a new current KEK to the key file and mark the others retired (kept for unwrapping only).

    A server that wrapped a new patient's data key under the old KEK just before it saw the new file may
    commit that row after the rotation's last rewrap; the retired KEK still opens it, after any restart,
    until `prune_keks` removes it.
    """
    material = keyfile.load(path)
    new_id = keyfile.new_kek_id()
    now = datetime.now(UTC).isoformat()
    for kek_id in material.keks:
        material.retired.setdefault(kek_id, now)
    material.keks[new_id] = os.urandom(32)
    material.current_kek = new_id
    keyfile.save(path, material)
    return new_id, material


def prune_keks(path: Path, *, in_use: set[str], grace: timedelta) -> tuple[list[str], list[str]]:
    """Remove retired KEKs that wrap no data key and were retired at least `grace` ago.

    The caller rewraps first, so `in_use` holds only rows committed by writers that started before the
    rotation; the grace period outlasts any such transaction. Returns (removed, kept) retired KEK ids.
    """
    material = keyfile.load(path)
    cutoff = datetime.now(UTC) - grace
    removed = [k for k, when in material.retired.items()
               if k not in in_use and datetime.fromisoformat(when) <= cutoff]
    for kek_id in removed:
        del material.keks[kek_id]
        del material.retired[kek_id]
    if removed:
        keyfile.save(path, material)
    return removed, list(material.retired)
