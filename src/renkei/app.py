"""Application factory: settings, keyring, engine, sheet registry, middleware and routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Connection, Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from renkei import health
from renkei.access import grants as access_grants
from renkei.access import pages as access_pages
from renkei.access import routes as access_routes
from renkei.access.exceptions import FormRejected
from renkei.audit import pages as audit_pages
from renkei.audit import routes as audit_routes
from renkei.audit import service as audit_service
from renkei.auth import pages as auth_pages
from renkei.auth import routes as auth_routes
from renkei.config import Settings
from renkei.consent import pages as consent_pages
from renkei.consent import routes as consent_routes
from renkei.crypto.keyring import Keyring, ensure_dev_keyfile
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.directory import pages as directory_pages
from renkei.directory import routes as directory_routes
from renkei.errors import DomainError, InvalidInput
from renkei.notify import hooks as notify_hooks
from renkei.notify import routes as notify_routes
from renkei.notify.hub import Hub
from renkei.patients import pages as patient_pages
from renkei.patients import routes as patient_routes
from renkei.printing import hooks as printing_hooks
from renkei.printing import pages as printing_pages
from renkei.printing import routes as printing_routes
from renkei.sheets import routes as sheet_routes
from renkei.sheets import service as sheet_service
from renkei.sheets.registry import SheetSchemaError
from renkei.timeline import form_pages as entry_form_pages
from renkei.timeline import pages as timeline_pages
from renkei.timeline import queries as timeline_queries
from renkei.timeline import routes as timeline_routes
from renkei.web import templating
from renkei.web.middleware import BodyLimitMiddleware, RequestContextMiddleware
from renkei.web.static_assets import STATIC_DIR
from renkei.web.validation import problems_from_errors

log = logging.getLogger("renkei")

UPLOAD_PATHS = ("/attachments", "/paper-intake")


def freeze_startup_heap() -> None:
    """For a server process, once its application is built: move every object alive now (modules, schemas,
    mappers, compiled validators) out of the cyclic garbage collector's sight (`gc.freeze`).

    They live as long as the process, yet each full collection walked all of them: on the timeline benchmark,
    one pause of about 150 ms every few hundred requests, an average of 0.5 ms a request. Not for tests,
    which build many applications in one process (frozen objects are never collected).
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, bind: Connection | None = None
) -> FastAPI:
    """Build the application. Tests pass `bind`, a connection whose outer transaction they roll back."""
    settings = settings or Settings()
    settings.check_production()
    if not settings.is_production and ensure_dev_keyfile(settings.key_file):  # type: ignore[arg-type]
        log.warning("created a development key file at %s (mode 0600); keep it out of git", settings.key_file)
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    try:
        sheets = sheet_service.load_registry(settings.schemas_dir)
    except SheetSchemaError as exc:
        log.critical("cannot start: sheet schemas are unusable: %s", exc)
        raise
    if bind is not None:
        engine = bind.engine
    owns_engine = engine is None
    engine = engine or make_engine(settings.sqlalchemy_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            if owns_engine:
                engine.dispose()

    app = FastAPI(
        title="Renkei (連携) API",
        version="1.0.0",
        description="Secure shared timeline for home medical and long-term care collaboration. "
        "在宅医療・介護連携のための患者タイムライン。",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.state.sheets = sheets
    app.state.engine = engine
    app.state.sessionmaker = (
        make_sessionmaker(bind, join_transaction_mode="create_savepoint") if bind is not None
        else make_sessionmaker(engine)
    )
    # The audit chain is appended inside each request's transaction, just before it commits; events (queued by
    # the domains, or noted by auth and patients) are appended first, so the outbox lock is always taken
    # before the audit lock. Keep the audit hook last: a hook after it that queued events would invert that.
    # Paper intakes follow their paper entries' transcription state before either is written.
    app.state.precommit_hooks = [printing_hooks.precommit, notify_hooks.precommit,
                                 audit_service.precommit_hook(keyring, settings)]
    # Tests bound to one rolled-back connection get no hub: its threads would share that connection.
    app.state.hub = Hub(settings, engine=engine, write_sessionmaker=app.state.sessionmaker,
                        enabled=bind is None)
    app.state.after_commit_hooks = [app.state.hub.after_commit]
    app.state.templates = templating.make_templates(settings)
    # Every signed-in page shows the break-the-glass grants its user holds (a persistent banner).
    app.state.page_context_providers = [access_grants.banner_context]
    # The patient list shows unread counts that only the timeline can count (patients may not import it).
    app.state.unread_counter = timeline_queries.listed_unread_counts

    _install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes,
        upload_prefixes=UPLOAD_PATHS,
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(RequestContextMiddleware)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    # Each request is matched against the routes of the included routers in turn: the busiest API first.
    # No path of one router matches a route of another (tests/test_routes.py), so the order decides nothing.
    app.include_router(timeline_routes.router, prefix="/api/v1")
    app.include_router(auth_routes.router, prefix="/api/v1")
    app.include_router(directory_routes.router, prefix="/api/v1")
    app.include_router(patient_routes.router, prefix="/api/v1")
    app.include_router(consent_routes.router, prefix="/api/v1")
    app.include_router(access_routes.router, prefix="/api/v1")
    app.include_router(audit_routes.router, prefix="/api/v1")
    app.include_router(notify_routes.router, prefix="/api/v1")
    app.include_router(notify_routes.ws_router)
    app.include_router(sheet_routes.router, prefix="/api/v1")
    app.include_router(printing_routes.api_router, prefix="/api/v1")
    app.include_router(auth_pages.router)
    app.include_router(directory_pages.router)
    app.include_router(patient_pages.router)
    app.include_router(consent_pages.router)
    app.include_router(access_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(timeline_pages.router)
    app.include_router(entry_form_pages.router)
    app.include_router(printing_routes.router)
    app.include_router(printing_pages.router)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if _is_api(request) or request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        return templating.error_page(request, exc)

    @app.exception_handler(FormRejected)
    async def form_rejected(request: Request, exc: FormRejected) -> Response:
        return exc.response

    @app.exception_handler(auth_pages.LoginFailed)
    async def login_failed(request: Request, exc: auth_pages.LoginFailed) -> Response:
        return auth_pages.login_failed_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        err = InvalidInput(fields=problems_from_errors(exc.errors()))
        return await domain_error(request, err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 403: "forbidden"}
        err = DomainError(str(exc.detail) if exc.status_code != 404 else "Not found")
        body = {"error": codes.get(exc.status_code, "http_error"), "detail": err.detail, "fields": []}
        if _is_api(request):
            return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return templating.plain_error_page(request, exc.status_code)
