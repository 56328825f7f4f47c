"""The bare HTTP reference: the same timeline rows as JSON, with no auth, access check, decryption or audit.

It shares the database, engine settings, server and JSON encoding with Renkei, so the ratio between the two
is the price of sign-in, the access decision, decryption, presentation and the audit chain.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.timeline.models import TimelineEntry

log = logging.getLogger("renkei.access")

COLUMNS = [TimelineEntry.id, TimelineEntry.record_id, TimelineEntry.sheet_id, TimelineEntry.sheet_version,
           TimelineEntry.category, TimelineEntry.version, TimelineEntry.status, TimelineEntry.priority,
           TimelineEntry.author_id, TimelineEntry.author_profession, TimelineEntry.posted_at,
           TimelineEntry.payload_ct]


class ServerTime:
    """Logs one line per request with the time spent in the app, like Renkei's request middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                route = "/ref/timeline" if scope["method"] == "GET" else "/ref/entries"
                log.info(json.dumps({"route": route, "ms": round((time.perf_counter() - start) * 1000, 1)}))


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    engine = make_engine(settings.sqlalchemy_url)

    def timeline(request: Request) -> JSONResponse:
        patient_id = uuid.UUID(request.path_params["patient_id"])
        limit = int(request.query_params.get("limit", "50"))
        with engine.connect() as conn:
            rows = conn.execute(
                select(*COLUMNS).where(TimelineEntry.patient_id == patient_id, TimelineEntry.is_head.is_(True),
                                       TimelineEntry.record_posted_at.is_not(None))
                .order_by(TimelineEntry.record_posted_at.desc(), TimelineEntry.record_id.desc()).limit(limit)
            ).all()
            conn.rollback()
        items = [{
            "id": str(r.id), "record_id": str(r.record_id), "sheet": r.sheet_id, "sheet_version": r.sheet_version,
            "category": r.category, "version": r.version, "status": r.status, "priority": r.priority,
            "author_id": str(r.author_id), "author_profession": r.author_profession,
            "posted_at": r.posted_at.isoformat(), "payload": base64.b64encode(r.payload_ct).decode(),
        } for r in rows]
        return JSONResponse({"items": items, "next_cursor": None})

    async def post_entry(request: Request) -> JSONResponse:
        # Stored as an unposted draft: the row costs the same to write, and its clear payload never reaches
        # the timeline that the other variants read.
        body = await request.json()
        patient_id = uuid.UUID(request.path_params["patient_id"])
        entry_id = uuid.uuid4()
        now = datetime.now(UTC)
        payload = json.dumps(body["data"], ensure_ascii=False).encode()
        with engine.begin() as conn:
            conn.execute(insert(TimelineEntry).values(
                id=entry_id, patient_id=patient_id, record_id=entry_id, version=1, revision=1,
                sheet_id=body["sheet"], sheet_version=1, category="message", status="draft", priority="normal",
                is_head=True, author_id=uuid.UUID(body["author_id"]),
                author_organisation_id=uuid.UUID(body["organisation_id"]), author_profession="nurse",
                payload_ct=payload, created_at=now, updated_at=now,
            ))
        return JSONResponse({"id": str(entry_id)}, status_code=201)

    app = Starlette(routes=[
        Route("/ref/patients/{patient_id}/timeline", timeline),
        Route("/ref/patients/{patient_id}/entries", post_entry, methods=["POST"]),
    ])
    return ServerTime(app)
