"""Run Renkei, or a bare websocket broadcast reference, under uvicorn (ws="websockets") for bench.notify.

Both append one line per committed event to `--commits`, `<seq> <commit wall-clock ns>`, taken right after
the commit returns, so the driver measures commit-to-client latency on one clock across processes.

    .venv/bin/python -m bench.notify_server renkei|reference --port 8111 --var-dir var/bench-notify \
        --commits var/bench-notify/commits-a.log [--database-url URL] [--no-deflate]

reference: POST /ref/post inserts one row and commits (one transaction, like a post), then puts
`{"seq","type"}` on every connected socket's bounded queue; /ref/ws accepts any first message. No Origin
check, ticket, outbox read, access decision, heartbeat or replay: what Renkei's live path costs on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.dataset import bench_settings
from renkei.app import create_app
from renkei.config import Settings
from renkei.db.engine import make_engine
from renkei.notify import service as notify_service


def renkei_app(settings: Settings, commits: Path) -> Any:
    app = create_app(settings)
    out = commits.open("a", buffering=1, encoding="utf-8")

    def on_commit(session: Session) -> None:
        seq = session.info.get(notify_service.APPENDED_KEY)
        if seq is not None:
            out.write(f"{seq} {time.time_ns()}\n")

    # Runs inside session.commit(), before the app's after-commit hook wakes the hub: the commit instant.
    event.listen(app.state.sessionmaker, "after_commit", on_commit)
    return app


def _insert(engine: Engine, out: Any) -> int:
    with engine.begin() as conn:
        seq = conn.scalar(text("INSERT INTO bench_ref_event (seq, created_at) "
                               "SELECT coalesce(max(seq), 0) + 1, CURRENT_TIMESTAMP FROM bench_ref_event "
                               "RETURNING seq"))
    out.write(f"{seq} {time.time_ns()}\n")
    return int(seq)


def reference_app(settings: Settings, commits: Path) -> Starlette:
    engine = make_engine(settings.sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_ref_event "
                          "(seq BIGINT PRIMARY KEY, created_at TEXT)"))
    out = commits.open("a", buffering=1, encoding="utf-8")
    queues: set[asyncio.Queue[str]] = set()

    async def post(request: Request) -> Response:
        seq = await run_in_threadpool(_insert, engine, out)
        message = json.dumps({"seq": seq, "type": "entry.created"})
        for queue in list(queues):
            if queue.full():
                queues.discard(queue)
            else:
                queue.put_nowait(message)
        return JSONResponse({"seq": seq}, status_code=201)

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        queue: asyncio.Queue[str] = asyncio.Queue(256)
        queues.add(queue)

        async def drain() -> None:
            try:
                while True:
                    await websocket.receive_text()
            except WebSocketDisconnect:
                pass

        reader = asyncio.create_task(drain())
        try:
            await websocket.send_text(json.dumps({"type": "ready", "seq": 0}))
            while not reader.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await websocket.send_text(getter.result())
                else:
                    getter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            queues.discard(queue)
            reader.cancel()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/ref/post", post, methods=["POST"]), WebSocketRoute("/ref/ws", socket),
                             Route("/healthz", healthz)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["renkei", "reference"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench-notify"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--commits", type=Path, required=True)
    parser.add_argument("--no-deflate", action="store_true", help="refuse permessage-deflate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = bench_settings(args.var_dir, args.database_url)
    make = renkei_app if args.which == "renkei" else reference_app
    app = make(settings, args.commits)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, log_level="warning", access_log=False,
                ws="websockets", ws_per_message_deflate=not args.no_deflate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
