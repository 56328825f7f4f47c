"""Helpers for directory tests: browser-style sign-in and reading pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from renkei.directory.models import User
from tests.factories import PASSWORD, next_totp

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def browser_sign_in(client: TestClient, db: Session, user: User, *, password: str = PASSWORD) -> None:
    """Sign in through the /login form (with a fresh TOTP code when the account has one)."""
    form = client.get("/login")
    otp = next_totp(db, user) if user.totp_enabled else ""
    r = client.post("/login", data={"email": user.email, "password": password, "otp": otp,
                                    "csrf_token": csrf_of(form.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/patients"


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def api_login(client: TestClient, db: Session, user: User, *, password: str = PASSWORD):
    body = {"email": user.email, "password": password}
    if user.totp_enabled:
        body["otp"] = next_totp(db, user)
    return client.post("/api/v1/auth/login", json=body)


class FormAudit(HTMLParser):
    """Collects what tablet usability checks need: labels, inputs, and tables outside a .table-wrap."""

    def __init__(self) -> None:
        super().__init__()
        self.label_targets: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.unwrapped_tables = 0
        self._wraps: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.label_targets.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a)
        if tag == "table" and not any(self._wraps):
            self.unwrapped_tables += 1
        if tag == "div":
            self._wraps.append("table-wrap" in (a.get("class") or "").split())

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._wraps:
            self._wraps.pop()

    def unlabelled(self) -> list[str]:
        return [str(f.get("name")) for f in self.fields if f.get("id") not in self.label_targets]


def audit_form(html: str) -> FormAudit:
    parser = FormAudit()
    parser.feed(html)
    return parser
