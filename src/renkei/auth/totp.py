"""TOTP second factor (RFC 6238) with single-use codes and a ±1 step window."""

from __future__ import annotations

import time

import pyotp

STEP = 30
ISSUER = "Renkei"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=account, issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """Return the time step the code belongs to (current ±1), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    t = time.time() if now is None else now
    totp = pyotp.TOTP(secret, interval=STEP)
    current = int(t // STEP)
    for step in (current - 1, current, current + 1):
        if pyotp.utils.strings_equal(totp.at(step * STEP), code):
            return step
    return None


def accept(secret: str, code: str, last_step: int | None, *, now: float | None = None) -> int | None:
    """Accept a code only if its step is newer than the last accepted one (no replay)."""
    step = matching_step(secret, code, now=now)
    if step is None or (last_step is not None and step <= last_step):
        return None
    return step
