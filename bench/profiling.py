"""Profile one kind of request in process: CPU time and SQL statements per request, and where the time goes.

    .venv/bin/python -m bench.profiling --var-dir var/bench-small read --requests 300
    .venv/bin/python -m bench.profiling --var-dir var/bench-small post --requests 300 --inline --cprofile 30
    .venv/bin/python -m pyinstrument -m bench.profiling --var-dir var/bench-small read --inline   # if installed

The real application (middleware, dependencies, access decision, audit chain, commit) is driven through
httpx's ASGI transport, without sockets or uvicorn. `--inline` runs what FastAPI would hand to its thread pool
on the calling thread instead, so that a profiler sees one thread; comparing a run with and without it shows
what the thread-pool hops cost. CPU time per request (all threads of this process) is steadier than wall time
on a shared machine. `--callgrind`, under valgrind's callgrind, counts the instructions of the timed requests
only (the startup heap frozen first, as a server process does): the same count on a quiet or a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from sqlalchemy import event

from bench.dataset import bench_settings, payloads
from bench.timeline import percentiles, sign_in
from renkei.app import create_app


def _time_statements(engine: Any, totals: dict[str, float]) -> None:
    """Add the wall time of each statement (keyed by its first words) and of each COMMIT to `totals`."""
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, *_args: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        totals[" ".join(statement.split())[:70]] += time.perf_counter() - started.pop(id(cursor))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    do_commit = engine.dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        start = time.perf_counter()
        try:
            do_commit(dbapi_connection)
        finally:
            totals["COMMIT"] += time.perf_counter() - start

    engine.dialect.do_commit = timed_commit


def _callgrind(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (valgrind's callgrind_control)."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


async def _inline(func: Callable[..., Any], *args: Any, **_kwargs: Any) -> Any:
    return func(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["read", "post"])
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench-small"))
    parser.add_argument("--database-url", default=None, help="default: sqlite:///<var-dir>/bench.db")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--inline", action="store_true", help="no thread pool: one thread for profilers")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one request")
    parser.add_argument("--callgrind", action="store_true",
                        help="under valgrind --tool=callgrind --instr-atstart=no: count the timed loop only")
    parser.add_argument("--sql-time", action="store_true",
                        help="wall time per request in each kind of statement and in COMMIT")
    args = parser.parse_args(argv)
    if args.inline:
        anyio.to_thread.run_sync = _inline  # type: ignore[assignment]

    settings = bench_settings(args.var_dir, args.database_url)
    roster = json.loads((args.var_dir / "roster.json").read_text(encoding="utf-8"))
    signed_in = sign_in(settings, roster, circles=20)
    patients = list(signed_in)
    app = create_app(settings)
    message = payloads()["message"]
    rng = random.Random(5)
    statements = 0
    shown: list[str] | None = None

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal statements
        statements += 1
        if shown is not None:
            shown.append(" ".join(statement.split())[:160])

    event.listen(app.state.engine, "before_cursor_execute", count)
    sql_time: dict[str, float] = defaultdict(float)
    if args.sql_time:
        _time_statements(app.state.engine, sql_time)

    async def one(client: httpx.AsyncClient) -> None:
        pid = rng.choice(patients)
        headers = signed_in[pid]["headers"]
        if args.kind == "read":
            r = await client.get(f"/api/v1/patients/{pid}/timeline?limit=50", headers=headers)
        else:
            r = await client.post(f"/api/v1/patients/{pid}/entries",
                                  headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                                  json={"sheet": "message", "version": 1, "data": message})
        if r.status_code >= 300:
            raise RuntimeError(f"unexpected status {r.status_code}")

    async def run() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(30):
                await one(client)
            if args.show_sql:
                nonlocal shown
                shown = []
                await one(client)
                print("\n".join(shown), file=sys.stderr)
                shown = None
            profiler = cProfile.Profile() if args.cprofile else None
            latencies: list[float] = []
            before, cpu = statements, time.process_time()
            sql_time.clear()
            if profiler:
                profiler.enable()
            if args.callgrind:
                # As a server process runs (renkei.asgi freezes its startup heap), and counted from here only.
                gc.collect()
                gc.freeze()
                _callgrind("on")
            for _ in range(args.requests):
                start = time.perf_counter()
                await one(client)
                latencies.append((time.perf_counter() - start) * 1000)
            if args.callgrind:
                _callgrind("off")
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
            for kind, seconds in sorted(sql_time.items(), key=lambda kv: -kv[1]):
                print(f"{seconds / args.requests * 1000:8.3f} ms  {kind}", file=sys.stderr)
        return {"kind": args.kind, "inline": args.inline, "requests": args.requests,
                "cpu_ms_per_request": round((time.process_time() - cpu) / args.requests * 1000, 2),
                "statements_per_request": round((statements - before) / args.requests, 1),
                **percentiles(latencies)}

    print(json.dumps(asyncio.run(run())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
