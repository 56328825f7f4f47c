"""Canary patients: identities unique enough that finding any part of one anywhere is proof of a leak."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Canary:
    name: str
    name_kana: str
    name_hiragana: str
    address: str
    care_insurance_number: str
    health_insurance_number: str
    birth_date: str = "1931-02-03"

    @property
    def secrets(self) -> dict[str, str]:
        return {"name": self.name, "family name": self.name.split()[0], "kana": self.name_kana,
                "hiragana": self.name_hiragana, "address": self.address,
                "care insurance number": self.care_insurance_number,
                "health insurance number": self.health_insurance_number}

    def registration(self, **overrides: object) -> dict[str, object]:
        """A POST /api/v1/patients body for this canary."""
        body: dict[str, object] = {
            "name": self.name, "name_kana": self.name_kana, "birth_date": self.birth_date, "sex": "female",
            "address": self.address, "phone": "0120-000-000", "care_insurance_number": self.care_insurance_number,
            "health_insurance_number": self.health_insurance_number, "care_level": "care_2",
            "team_role": "attending_physician",
        }
        body.update(overrides)
        return body


def make_canary(seed: int) -> Canary:
    rng = random.Random(seed)
    kanji = "".join(chr(rng.randrange(0x4E00, 0x9FA0)) for _ in range(5))
    kana = "".join(chr(rng.randrange(0x30A2, 0x30F3)) for _ in range(7))
    return Canary(
        name=f"{kanji[:3]} {kanji[3:]}", name_kana=f"{kana[:4]} {kana[4:]}",
        name_hiragana="".join(chr(ord(c) - 0x60) for c in kana),
        address=f"カナリア市{kanji}町{rng.randrange(100, 999)}番地",
        care_insurance_number="7" + "".join(rng.choice("0123456789") for _ in range(9)),
        health_insurance_number="8" + "".join(rng.choice("0123456789") for _ in range(11)),
    )


def leaks(blob: bytes, canaries: list[Canary], *, extra: dict[str, str] | None = None,
          hex_too: bool = False) -> list[str]:
    """Which canary values (or extra named secrets) occur in blob as UTF-8, UTF-16 or, optionally, hex."""
    found = []
    named = [(f"{label} of canary {c.name_kana!r}", value) for c in canaries for label, value in c.secrets.items()]
    named += list((extra or {}).items())
    for label, value in named:
        forms = [value.encode("utf-8"), value.encode("utf-16-le")]
        if hex_too:
            forms.append(value.encode("utf-8").hex().encode("ascii"))  # bytea in a pg_dump
        if any(form in blob for form in forms):
            found.append(label)
    return found
