"""HMAC blind indexes for exact lookup of encrypted identifiers."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

_SPACE = re.compile(r"[\s\u3000]+")
# Hyphen look-alikes that Japanese IMEs and forms produce; NFKC leaves the dashes U+2012-2015 alone.
_NUMBER_NOISE = re.compile(r"[\s\-‐－ー−\u2012-\u2015]+")


def normalise_kana(text: str) -> str:
    """NFKC, katakana folded to hiragana, no spaces, lower-case: 'ヤマダ　タロウ' == 'やまだたろう'."""
    text = unicodedata.normalize("NFKC", text)
    folded = "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)
    return _SPACE.sub("", folded).lower()


def normalise_number(text: str) -> str:
    """NFKC (full-width digits to ASCII) and no spaces or hyphens."""
    return _NUMBER_NOISE.sub("", unicodedata.normalize("NFKC", text)).upper()


def digest(key: bytes, kind: str, value: str) -> str:
    """Keyed digest of an already normalised value, separated by kind so values never collide across kinds."""
    return hmac.new(key, kind.encode("ascii") + b"\x1f" + value.encode("utf-8"), hashlib.sha256).hexdigest()
