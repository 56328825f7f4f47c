"""Jinja2 environment for pages, with i18n and the CSRF token of the cookie session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from renkei.config import Settings
from renkei.errors import DomainError
from renkei.web.i18n import lang_of, translate

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["settings"] = settings
    return templates


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render a page with `t()` bound to the request's language."""
    lang = lang_of(request)
    ctx = {"lang": lang, "t": lambda key, **kw: translate(lang, key, **kw), "request": request}
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
