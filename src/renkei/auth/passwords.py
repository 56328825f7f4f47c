"""Password hashing (argon2id through passlib/libpass) and the password policy. The only passlib import."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

from passlib.context import CryptContext

from renkei.errors import FieldProblem

MIN_LENGTH = 12
MAX_BYTES = 1024

# Parameters follow OWASP's argon2id baseline (m=19 MiB, t=2, p=1); raising them triggers rehash on login.
_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19 * 1024,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
_DUMMY_HASH = _context.hash("renkei-dummy-password-for-timing")


def _prepare(password: str) -> str:
    # NFC so that the same passphrase typed on different keyboards (composed vs decomposed kana) matches.
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    return _context.hash(_prepare(password))


def verify(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Verify; returns (ok, new_hash) where new_hash is set when parameters changed.

    An unknown user is verified against a dummy hash so both paths take the same time.
    """
    if len(password.encode("utf-8")) > MAX_BYTES:
        _context.verify("x", _DUMMY_HASH)
        return False, None
    if password_hash is None:
        _context.verify(_prepare(password), _DUMMY_HASH)
        return False, None
    ok, new_hash = _context.verify_and_update(_prepare(password), password_hash)
    return ok, new_hash


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("renkei.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_policy(
    password: str, *, path: str = "/password", context: tuple[str, ...] = ()
) -> list[FieldProblem]:
    """Return the policy violations of a new password (empty when acceptable)."""
    problems: list[FieldProblem] = []
    if len(password) < MIN_LENGTH:
        problems.append(
            FieldProblem(path, f"{MIN_LENGTH}文字以上にしてください", f"Must be at least {MIN_LENGTH} characters")
        )
    if len(password.encode("utf-8")) > MAX_BYTES:
        problems.append(FieldProblem(path, "長すぎます", f"Must be at most {MAX_BYTES} bytes"))
    lowered = _prepare(password).lower()
    if lowered in _common_passwords() or len(set(lowered)) <= 2:
        problems.append(
            FieldProblem(path, "よく使われるパスワードは使えません", "This password is too common")
        )
    elif any(part and len(part) >= 4 and part.lower() in lowered for part in context):
        problems.append(
            FieldProblem(path, "メールアドレスや氏名を含めないでください", "Must not contain your email or name")
        )
    return problems
