"""Helpers shared by the sign-in tests."""

from __future__ import annotations

import re
import time

from fastapi.testclient import TestClient
from httpx import Response

from tests.factories import PASSWORD

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def api_login(client: TestClient, email: str, password: str = PASSWORD, otp: str | None = None) -> Response:
    body: dict[str, str] = {"email": email, "password": password}
    if otp is not None:
        body["otp"] = otp
    return client.post("/api/v1/auth/login", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_field(html: str) -> str:
    """The CSRF token a page embeds in its forms."""
    match = _CSRF_FIELD.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


def page_login(client: TestClient, email: str, password: str = PASSWORD, otp: str = "") -> Response:
    """Sign in through the HTML form (GET for the CSRF cookie, then POST), without following the redirect."""
    form = client.get("/login")
    assert form.status_code == 200
    data = {"email": email, "password": password, "csrf_token": csrf_field(form.text), "otp": otp}
    return client.post("/login", data=data, follow_redirects=False)


def away_from_step_boundary(step: int = 30, margin: float = 2.0) -> None:
    """Wait until the current TOTP step has at least `margin` seconds left, so a code's step cannot shift."""
    left = step - time.time() % step
    if left < margin:
        time.sleep(left + 0.05)
