"""User-interface strings: Japanese first, English available (cookie `lang=en`)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANG = "ja"
LANGS = ("ja", "en")


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((LOCALES_DIR / f"{lang}.json").read_text("utf-8"))


def lang_of(request: Request) -> str:
    lang = request.cookies.get("lang", DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


def translate(lang: str, key: str, **kw: object) -> str:
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANG).get(key) or key
    return text.format(**kw) if kw else text
