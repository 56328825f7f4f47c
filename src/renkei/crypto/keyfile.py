"""The key file: KEKs and the other secrets that must live outside the database."""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FILE_FORMAT = 1


class KeyFileError(RuntimeError):
    """The key file is missing, unreadable or malformed."""


@dataclass
class KeyMaterial:
    current_kek: str
    keks: dict[str, bytes]
    index_key: bytes
    audit_key: bytes
    token_key: bytes
    secret_key: bytes  # wraps non-patient secrets such as TOTP seeds
    checkpoint_key: bytes  # Ed25519 private key (raw) signing audit checkpoints
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # KEKs replaced by a rotation (id -> when, ISO 8601): kept to unwrap data keys a server wrapped just
    # before it saw the rotation, never used to wrap; `renkei keys prune` removes them once nothing uses them.
    retired: dict[str, str] = field(default_factory=dict)


def new_kek_id() -> str:
    return "kek-" + datetime.now(UTC).strftime("%Y%m%d") + "-" + secrets.token_hex(4)


def generate() -> KeyMaterial:
    """Fresh random key material."""
    kek_id = new_kek_id()
    signing = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return KeyMaterial(
        current_kek=kek_id,
        keks={kek_id: os.urandom(32)},
        index_key=os.urandom(32),
        audit_key=os.urandom(32),
        token_key=os.urandom(32),
        secret_key=os.urandom(32),
        checkpoint_key=signing,
    )


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode("ascii"), validate=True)


def _moment(value: str) -> str:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("retirement time without a time zone")
    return moment.isoformat()


def load(path: Path) -> KeyMaterial:
    """Read the key file; refuse a malformed one rather than run with a partial keyring."""
    try:
        raw = json.loads(Path(path).read_text("utf-8"))
        if raw.get("format") != FILE_FORMAT:
            raise KeyFileError(f"{path}: unsupported key file format")
        keks = {k: _unb64(v) for k, v in raw["keks"].items()}
        material = KeyMaterial(
            current_kek=raw["current_kek"],
            keks=keks,
            index_key=_unb64(raw["index_key"]),
            audit_key=_unb64(raw["audit_key"]),
            token_key=_unb64(raw["token_key"]),
            secret_key=_unb64(raw["secret_key"]),
            checkpoint_key=_unb64(raw["checkpoint_key"]),
            created_at=raw.get("created_at", ""),
            retired={str(k): _moment(v) for k, v in raw.get("retired", {}).items()},
        )
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file not found: {path}") from exc
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: malformed key file ({type(exc).__name__})") from exc
    if material.current_kek not in material.keks:
        raise KeyFileError(f"{path}: current KEK {material.current_kek} is not in the file")
    if any(len(k) != 32 for k in material.keks.values()):
        raise KeyFileError(f"{path}: every KEK must be 256 bits")
    if material.current_kek in material.retired or not set(material.retired) <= set(material.keks):
        raise KeyFileError(f"{path}: retired KEKs must be in the file and must not be the current one")
    return material


def save(path: Path, material: KeyMaterial) -> None:
    """Write atomically with mode 0600 so a crash never leaves a half-written key file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(
        {
            "format": FILE_FORMAT,
            "created_at": material.created_at,
            "current_kek": material.current_kek,
            "keks": {k: _b64(v) for k, v in material.keks.items()},
            "index_key": _b64(material.index_key),
            "audit_key": _b64(material.audit_key),
            "token_key": _b64(material.token_key),
            "secret_key": _b64(material.secret_key),
            "checkpoint_key": _b64(material.checkpoint_key),
            "retired": material.retired,
        },
        indent=2,
    )
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
