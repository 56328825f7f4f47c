"""Scripts and styles: versioned URLs that tablets may cache for a year; anything else is revalidated."""

from __future__ import annotations

import hashlib
import re

from renkei.web.static_assets import STATIC_DIR


def _linked(html: str) -> dict[str, str]:
    return dict(re.findall(r'(?:src|href)="/static/([\w.-]+)\?v=([0-9a-f]+)"', html))


def test_pages_link_scripts_and_styles_by_a_hash_of_their_content(client):
    linked = _linked(client.get("/login").text)
    assert set(linked) >= {"app.css", "app.js"}
    for name, version in linked.items():
        assert version == hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def test_the_current_versions_url_is_cached_for_a_year_and_any_other_is_revalidated(client):
    name, version = next(iter(_linked(client.get("/login").text).items()))
    current = client.get(f"/static/{name}?v={version}")
    assert current.status_code == 200
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    for url in (f"/static/{name}", f"/static/{name}?v=000000000000"):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache", url
    assert client.get("/static/no-such-file.js?v=1").headers["cache-control"] == "no-store"
    assert client.get("/login").headers["cache-control"] == "no-store"
