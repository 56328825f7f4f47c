"""Browser tests: Debian's Chromium (headless) driven by Playwright against a real server.

The server is uvicorn in a subprocess on a free port, serving a temporary SQLite file that was migrated
and loaded with the demo region (plus a known TOTP secret for the administrators). Browser tests run once,
in the SQLite pass of `make test`. Without Chromium or Playwright they are skipped with the reason, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from renkei import demo
from renkei.config import Settings
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.directory.models import User
from tests.factories import TOTP_SECRET, enrol_totp

CHROMIUM = os.environ.get("RENKEI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "e2e-demo-passphrase-2026"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
ADMINS = ("admin.nursing@midori.example", "region.admin@midori.example")

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - reported by the fixture below
    sync_playwright = None  # type: ignore[assignment]
else:
    _AXE = Axe()


def _unavailable() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM} (Debian package 'chromium', installed by `make setup`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if not mine:
        return
    if os.environ.get("RENKEI_TEST_BACKEND", "sqlite") == "postgres":
        skip = pytest.mark.skip(reason="browser tests run once, in the SQLite pass (their server uses its own file)")
        for item in mine:
            item.add_marker(skip)
        return
    reason = _unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"browser tests cannot run under CI=true: {reason}")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Region:
    """The demo region as the browser tests see it."""

    base_url: str
    users: dict[str, dict[str, Any]]
    patients: list[dict[str, Any]]

    def patient_with(self, *emails: str) -> dict[str, Any]:
        """The first demo patient whose team has all these members (and a consent in force)."""
        for p in self.patients:
            team = {m["email"] for m in p["team"]}
            if all(e in team for e in emails) and p.get("consent") != "withdrawn":
                return p
        raise LookupError(emails)


def _load_region(settings: Settings) -> dict[str, Any]:
    migrations.upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    with make_sessionmaker(engine)() as session:
        roster = demo.load(session, keyring=keyring, password=PASSWORD, settings=settings)
        for email in ADMINS:
            user = session.scalars(select(User).where(User.email == email)).one()
            enrol_totp(session, keyring, user)
        session.commit()
    engine.dispose()
    return {"users": roster.users, "patients": roster.patients}


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """Migrate and load a fresh demo region, then serve it with uvicorn until the session ends."""
    var = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RENKEI_ENVIRONMENT": "development", "RENKEI_VAR_DIR": str(var),
        "RENKEI_DATABASE_URL": f"sqlite:///{var / 'renkei.db'}", "RENKEI_KEY_FILE": str(var / "keys.json"),
        "RENKEI_PUBLIC_URL": base, "RENKEI_ALLOWED_ORIGINS": json.dumps([base]),
        "RENKEI_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]), "RENKEI_DEMO_PASSWORD": PASSWORD,
        "RENKEI_LOG_LEVEL": "WARNING",
    }
    settings = Settings(environment="development", var_dir=var, database_url=env["RENKEI_DATABASE_URL"],
                        key_file=var / "keys.json")
    ensure_dev_keyfile(settings.key_file)  # type: ignore[arg-type]
    loaded = _load_region(settings)
    log = open(var / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "renkei.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--ws", "websockets"],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/login", timeout=2) as r:  # noqa: S310 - our own loopback server
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start:\n" + (var / "server.log").read_text("utf-8"))
            time.sleep(0.2)
        yield Region(base, {u["email"]: u for u in loaded["users"]}, loaded["patients"])
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it is open,
    # which would break later tests that call asyncio.run().
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser: Browser, region: Region, *, width: int = 1024, height: int = 768) -> Page:
    """A fresh browser context (its own cookies, like a second tablet) in Japanese."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo", base_url=region.base_url)
    context.set_default_timeout(15000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # HTTP errors the app handles (422 field errors, an offline retry) are logged by Chromium too: not bugs.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page: Page, email: str, *, otp: bool = False) -> None:
    page.goto("/login")
    page.get_by_label("メールアドレス").fill(email)
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    if otp:
        page.locator("#otp").fill(pyotp.TOTP(TOTP_SECRET).now())
    page.get_by_role("button", name="サインイン").click()
    page.wait_for_url(lambda url: "/login" not in url)


# -- checks every page gets -------------------------------------------------------------------------

VIEWPORTS = {"portrait": (768, 1024), "landscape": (1024, 768), "phone": (390, 844)}
# 200 % zoom of the portrait tablet lays the page out in half the CSS pixels.
ZOOMED = (384, 512)

_TARGETS_JS = """
() => {
  const small = [];
  const seen = new Set();
  const els = document.querySelectorAll('a[href], button, input, select, textarea, summary, [role=switch]');
  for (const el of els) {
    if (el.type === 'hidden' || el.closest('[hidden], template, .skip')) continue;
    let target = el;
    const hiddenFile = el.type === 'file' && el.getBoundingClientRect().width <= 1;
    if (el.type === 'radio' || el.type === 'checkbox' || hiddenFile) {
      target = el.closest('label') || (el.id && document.querySelector('label[for="' + el.id + '"]'));
      if (!target) { small.push('unlabelled ' + el.outerHTML.slice(0, 120)); continue; }
    }
    if (seen.has(target)) continue;
    seen.add(target);
    const r = target.getBoundingClientRect();
    const style = getComputedStyle(target);
    if (r.width === 0 || r.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
    if (r.height < 44 - 0.5 || r.width < 44 - 0.5) {
      small.push(Math.round(r.width) + 'x' + Math.round(r.height) + ' ' + target.outerHTML.slice(0, 140));
    }
  }
  return small;
}
"""

_UNLABELLED_JS = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && !el.closest('template'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 140))
"""


def _contrast_problems(page: Page) -> list[str]:
    """WCAG AA colour contrast (4.5:1, 3:1 for large text) of every visible text, by axe-core's rule."""
    results = _AXE.run(page, options={"runOnly": {"type": "rule", "values": ["color-contrast"]},
                                      "resultTypes": ["violations"]})
    return [f"contrast {node['any'][0]['message'] if node.get('any') else ''}: {node['html'][:140]}"
            for violation in results.response["violations"] for node in violation["nodes"]]


def check_page(page: Page, name: str) -> None:
    """At the three viewport sizes: no horizontal scrolling, touch targets of 44 px, labelled fields, WCAG AA
    colour contrast;
    a full-page screenshot of each under artifacts/screenshots/; and no horizontal scroll at 200 % zoom."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for label, (width, height) in {**VIEWPORTS, "zoom200": ZOOMED}.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            problems.append(f"{label}: horizontal scrolling ({scroll} > {inner})")
        if label in VIEWPORTS:
            problems += [f"{label}: small target {s}" for s in page.evaluate(_TARGETS_JS)]
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}x{height}.png"), full_page=True)
    problems += [f"unlabelled field {s}" for s in page.evaluate(_UNLABELLED_JS)]
    problems += _contrast_problems(page)
    page.set_viewport_size({"width": 1024, "height": 768})
    assert not problems, f"{name}:\n" + "\n".join(problems)
