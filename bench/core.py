"""Benchmark: sign-in (argon2id) and the patient list of a nurse on 40 care teams in a 10,000-patient region.

    .venv/bin/python -m bench.core --var-dir var/bench-core --concurrency 1 --duration 15

The first run generates the region (10,000 patients with teams and consents through `bench.dataset`, no
timeline entries, plus one visiting nurse on 40 of the teams); later runs reuse it. For each benchmark:
  renkei     the real API: `POST /api/v1/auth/login` (argon2id verify, throttle check, session and refresh
             token, JWT) and `GET /api/v1/patients` (bearer auth, team + consent narrowing in SQL, decryption
             of 40 identities, one audit row per listed patient)
  reference  a bare endpoint on the same uvicorn/engine/database: the user row by email and a constant token
             (no password hash, no session); the same 40 patient rows by a membership join, as base64
             ciphertext (no auth, consent check, decryption or audit)
  floor      in process, no HTTP: one argon2id verify of the real hash; the SQL fetch of the 40 rows and their
             decryption
with p50/p95/p99 (client-observed, and server time from the request log), throughput and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bench import dataset
from bench.timeline import Sample, _wait, load, percentiles, server_times
from renkei.auth import passwords
from renkei.config import Settings
from renkei.crypto.keyring import Keyring
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.directory.models import Organisation, User
from renkei.patients import service as patient_service
from renkei.patients.models import CareTeamMembership, Patient

RENKEI_PORT, REFERENCE_PORT = 8111, 8112
TEAMS = 40
NURSE_EMAIL = "core-bench-nurse@bench.example"
ROSTER = "core-roster.json"

log = logging.getLogger("renkei.access")


# -- the region --------------------------------------------------------------------------------------


def prepare(settings: Settings, *, patients: int) -> dict[str, Any]:
    """The region and a nurse on TEAMS of its care teams; generated once, then read back."""
    path = settings.var_dir / ROSTER
    if path.exists():
        return json.loads(path.read_text("utf-8"))
    started = time.perf_counter()
    region = dataset.generate(settings, patients=patients, entries=0)
    engine = make_engine(settings.sqlalchemy_url)
    now = datetime.now(UTC)
    org_id, nurse_id = uuid.uuid4(), uuid.uuid4()
    chosen = random.Random(5).sample(region["patients"], TEAMS)
    with engine.begin() as conn:
        conn.execute(insert(Organisation), [{"id": org_id, "name": "ベンチ訪問看護ステーション",
                                             "kind": "visiting_nurse_station", "phone": None, "active": True,
                                             "created_at": now}])
        conn.execute(insert(User), [{
            "id": nurse_id, "organisation_id": org_id, "email": NURSE_EMAIL, "name": "ベンチ 看護師",
            "name_kana": None, "profession": "nurse", "role": "member",
            "password_hash": passwords.hash_password(dataset.BENCH_PASSWORD), "active": True,
            "totp_secret": None, "totp_enabled": False, "totp_last_step": None, "created_at": now,
            "updated_at": now, "disabled_at": None}])
        conn.execute(insert(CareTeamMembership), [{
            "id": uuid.uuid4(), "patient_id": uuid.UUID(pid), "user_id": nurse_id, "organisation_id": org_id,
            "team_role": "visiting_nurse", "start_date": date(2024, 1, 1), "end_date": None,
            "added_by": nurse_id, "created_at": now, "ended_at": None, "ended_by": None, "end_reason": None,
        } for pid in chosen])
    engine.dispose()
    roster = {"patients": len(region["patients"]), "nurse_id": str(nurse_id), "teams": chosen,
              "seconds": round(time.perf_counter() - started, 1)}
    path.write_text(json.dumps(roster), encoding="utf-8")
    return roster


# -- the bare reference ------------------------------------------------------------------------------


class ServerTime:
    """One JSON line per request with the time spent in the app, as Renkei's request middleware logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                log.info(json.dumps({"method": scope["method"], "route": scope["path"],
                                     "ms": round((time.perf_counter() - start) * 1000, 1)}))


def reference_app(settings: Settings) -> ServerTime:
    engine = make_engine(settings.sqlalchemy_url)

    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        with engine.connect() as conn:
            found = conn.execute(select(User.id).where(User.email == body["email"])).first()
            conn.rollback()
        if found is None:
            return JSONResponse({"error": "invalid_credentials"}, status_code=401)
        return JSONResponse({"access_token": "reference", "refresh_token": "reference",
                             "token_type": "bearer", "expires_in": 600})

    def patients(request: Request) -> JSONResponse:
        user_id = uuid.UUID(request.query_params["user_id"])
        with engine.connect() as conn:
            rows = conn.execute(
                select(Patient.id, Patient.identity_ct, CareTeamMembership.team_role)
                .join(CareTeamMembership, CareTeamMembership.patient_id == Patient.id)
                .where(CareTeamMembership.user_id == user_id, CareTeamMembership.ended_at.is_(None))
            ).all()
            conn.rollback()
        return JSONResponse([{"id": str(r.id), "identity": base64.b64encode(r.identity_ct).decode(),
                              "my_team_role": r.team_role} for r in rows])

    app = Starlette(routes=[Route("/ref/login", login, methods=["POST"]), Route("/ref/patients", patients)])
    return ServerTime(app)


def serve_reference(args: argparse.Namespace) -> int:
    settings = dataset.bench_settings(args.var_dir, args.database_url)
    handler = logging.FileHandler(args.timings, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    uvicorn.run(reference_app(settings), host="127.0.0.1", port=args.port, log_config=None,
                log_level="warning", access_log=False)
    return 0


@contextmanager
def servers(args: argparse.Namespace, results_dir: Path):
    """Renkei (bench.server) and the reference as separate uvicorn processes, one worker each."""
    common = ["--var-dir", str(args.var_dir)]
    if args.database_url:
        common += ["--database-url", args.database_url]
    commands = [
        [sys.executable, "-m", "bench.server", "renkei", "--port", str(RENKEI_PORT),
         "--timings", str(results_dir / "core-renkei.timings.raw"), *common],
        [sys.executable, "-m", "bench.core", "serve-reference", "--port", str(REFERENCE_PORT),
         "--timings", str(results_dir / "core-reference.timings.raw"), *common],
    ]
    procs = [subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}) for cmd in commands]
    try:
        _wait(f"http://127.0.0.1:{RENKEI_PORT}/healthz")
        _wait(f"http://127.0.0.1:{REFERENCE_PORT}/ref/patients?user_id={uuid.uuid4()}")
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


# -- floors ------------------------------------------------------------------------------------------


def login_floor(settings: Settings, seconds: float) -> Sample:
    """argon2id verify of the nurse's real hash, in process: the price of the password itself."""
    engine = make_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        stored = conn.execute(select(User.password_hash).where(User.email == NURSE_EMAIL)).scalar_one()
    engine.dispose()
    sample = Sample()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        ok, _ = passwords.verify(dataset.BENCH_PASSWORD, stored)
        assert ok
        sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
    sample.seconds = time.perf_counter() - started
    return sample


def list_floor(settings: Settings, nurse_id: str, seconds: float) -> Sample:
    """The 40 patient rows by a membership join and the decryption of each identity, in process."""
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    maker = make_sessionmaker(engine)
    sample = Sample()
    user_id = uuid.UUID(nurse_id)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        with maker() as session:
            rows = session.scalars(
                select(Patient).join(CareTeamMembership, CareTeamMembership.patient_id == Patient.id)
                .where(CareTeamMembership.user_id == user_id, CareTeamMembership.ended_at.is_(None))
            ).all()
            names = [patient_service.decrypt_identity(session, keyring, p).name for p in rows]
            assert len(names) == TEAMS
            session.rollback()
        sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
    sample.seconds = time.perf_counter() - started
    engine.dispose()
    return sample


# -- the run -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = dataset.bench_settings(args.var_dir, args.database_url)
    roster = prepare(settings, patients=args.patients)
    results_dir = args.out.parent
    results_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "database": settings.database_url.split("@")[-1], "patients": roster["patients"], "teams": TEAMS,
        "concurrency": args.concurrency, "duration_s": args.duration, "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    credentials = {"email": NURSE_EMAIL, "password": dataset.BENCH_PASSWORD}
    warmup = 10
    with servers(args, results_dir):
        first = httpx.post(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/auth/login", json=credentials, timeout=30)
        first.raise_for_status()
        bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
        listed = httpx.get(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/patients", headers=bearer, timeout=30)
        assert listed.status_code == 200 and len(listed.json()) == TEAMS, listed.text[:200]

        async def renkei_login(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/auth/login", json=credentials)

        async def reference_login(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post(f"http://127.0.0.1:{REFERENCE_PORT}/ref/login", json=credentials)

        async def renkei_list(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/patients", headers=bearer)

        async def reference_list(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get(f"http://127.0.0.1:{REFERENCE_PORT}/ref/patients",
                                    params={"user_id": roster["nurse_id"]})

        for name, renkei_fn, reference_fn, floor_fn in (
            ("login", renkei_login, reference_login, lambda: login_floor(settings, args.duration)),
            ("patient_list_40", renkei_list, reference_list,
             lambda: list_floor(settings, roster["nurse_id"], args.duration)),
        ):
            renkei = asyncio.run(load(renkei_fn, concurrency=args.concurrency, duration=args.duration,
                                      warmup=warmup))
            reference = asyncio.run(load(reference_fn, concurrency=args.concurrency, duration=args.duration,
                                         warmup=warmup))
            report[name] = {"renkei": renkei.summary(), "reference": reference.summary(),
                            "floor": floor_fn().summary()}
        time.sleep(1)
    # The first login and list above were checks, then each phase's warm-up requests: skip them all.
    renkei_log = results_dir / "core-renkei.timings.raw"
    reference_log = results_dir / "core-reference.timings.raw"
    report["login"]["renkei"]["server"] = server_times(renkei_log, "/auth/login", warmup + 1)
    report["login"]["reference"]["server"] = server_times(reference_log, "/ref/login", warmup)
    listing = report["patient_list_40"]
    listing["renkei"]["server"] = _exact_route_times(renkei_log, "/api/v1/patients", warmup + 1)
    listing["reference"]["server"] = server_times(reference_log, "/ref/patients", warmup + 1)
    for name in ("login", "patient_list_40"):
        part = report[name]
        part["ratio_to_reference_p50"] = _ratio(part["renkei"]["p50_ms"], part["reference"]["p50_ms"])
        part["ratio_to_reference_server_p50"] = _ratio(part["renkei"]["server"]["p50_ms"],
                                                       part["reference"]["server"]["p50_ms"])
        part["ratio_to_floor_p50"] = _ratio(part["renkei"]["server"]["p50_ms"], part["floor"]["p50_ms"])
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _ratio(a: float, b: float) -> float:
    return round(a / max(b, 1e-9), 2)


def _exact_route_times(path: Path, route: str, skip: int) -> dict[str, float]:
    values = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("route") == route and record.get("method") == "GET":
            values.append(float(record["ms"]))
    return percentiles(values[skip:])


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['database']}: {report['patients']:,} patients, a nurse on {report['teams']} teams, "
             f"{report['concurrency']} concurrent client(s), {report['duration_s']} s per phase, "
             f"{report['cpus']} CPUs (load average before the run {report['load_average_before']})", "",
             "| benchmark | variant | p50 ms | p95 ms | p99 ms | server p50 | server p95 | server p99 "
             "| req/s |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ("login", "patient_list_40"):
        for variant in ("renkei", "reference", "floor"):
            r = report[name][variant]
            server = r.get("server", {})
            servers_ms = " | ".join(str(server.get(k, "–")) for k in ("p50_ms", "p95_ms", "p99_ms"))
            lines.append(f"| {name} | {variant} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                         f"{servers_ms} | {r['throughput_rps']} |")
    lines.append("")
    for name in ("login", "patient_list_40"):
        part = report[name]
        lines.append(f"{name}: renkei/reference p50 {part['ratio_to_reference_p50']}× (server time "
                     f"{part['ratio_to_reference_server_p50']}×); renkei server p50 / floor p50 "
                     f"{part['ratio_to_floor_p50']}×")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "serve-reference"])
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench-core"))
    parser.add_argument("--database-url", default=None, help="default: sqlite:///<var-dir>/bench.db")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase and variant")
    parser.add_argument("--out", type=Path, default=Path("bench/results/core-sqlite.json"))
    parser.add_argument("--port", type=int, default=REFERENCE_PORT, help="serve-reference only")
    parser.add_argument("--timings", type=Path, help="serve-reference only: one JSON line per request")
    args = parser.parse_args(argv)
    if args.command == "serve-reference":
        return serve_reference(args)
    print(table(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
