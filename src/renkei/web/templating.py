"""Jinja2 environment for pages, with i18n and the CSRF token of the cookie session."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from renkei.config import Settings
from renkei.errors import DomainError
from renkei.web.i18n import catalogue, lang_of, translate
from renkei.web.static_assets import static_url

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Clinicians read times in Japan time whatever the server's zone.
JST = ZoneInfo("Asia/Tokyo")


def jst_time(moment: datetime | None, fmt: str = "%H:%M") -> str:
    return moment.astimezone(JST).strftime(fmt) if moment else ""


def without_cursor(params: Any) -> str:
    """The query string of a filtered timeline minus its cursor, ready for `cursor=` to be appended."""
    kept = [(k, v) for k, v in params.multi_items() if k != "cursor"]
    return urlencode(kept) + "&" if kept else ""


def js_strings(lang: str) -> dict[str, str]:
    """The `js_*` strings of the catalogue, for the page scripts (toasts, retry notices)."""
    return {key[3:]: text for key, text in catalogue(lang).items() if key.startswith("js_")}


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["settings"] = settings
    templates.env.globals["jst_time"] = jst_time
    templates.env.globals["static_url"] = static_url
    templates.env.filters["reject_cursor"] = without_cursor
    return templates


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render a page with `t()` bound to the request's language."""
    lang = lang_of(request)
    ctx = {"lang": lang, "t": lambda key, **kw: translate(lang, key, **kw), "request": request,
           "js_strings": js_strings(lang)}
    ctx.update(context or {})
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status_code,
                                                        headers=headers)


def error_page(request: Request, exc: DomainError) -> Response:
    if exc.status == 401:
        from_path = request.url.path
        return Response(status_code=303, headers={"Location": "/login" if from_path != "/login" else "/"})
    return render(request, "error.html", {"status": exc.status, "code": exc.code, "detail": exc.detail,
                                          "fields": exc.fields}, status_code=exc.status)


def plain_error_page(request: Request, status: int) -> Response:
    return render(request, "error.html", {"status": status, "code": "not_found" if status == 404 else "error",
                                          "detail": "", "fields": []}, status_code=status)
