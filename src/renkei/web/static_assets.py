"""Static files (scripts, styles) with a content hash in their URL, so tablets on weak networks keep them.

Pages link `static_url("app.js")` = `/static/app.js?v=<hash of its bytes>`. A request carrying the current
hash may be cached for a year (a new release changes the hash, hence the URL); any other static request is
revalidated each time (ETag), so a stale script never runs against a newer server.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/static/"
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"


@lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """File name (relative to STATIC_DIR) → the first 12 hex digits of its SHA-256, read once per process."""
    return {path.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in sorted(STATIC_DIR.rglob("*")) if path.is_file()}


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content (a missing file is a template bug: KeyError)."""
    return f"{PREFIX}{name}?v={_versions()[name]}"


def cache_control(path: str, query_string: bytes) -> bytes:
    """Cache-Control for a static file request: long-lived only for the current version's URL."""
    name = path.removeprefix(PREFIX)
    wanted = parse_qs(query_string.decode("latin-1")).get("v", [""])[0]
    return IMMUTABLE if wanted and _versions().get(name) == wanted else REVALIDATE
