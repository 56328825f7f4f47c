"""Benchmark: timeline read (50 entries) and sheet post over HTTP with concurrent clients, with references.

    .venv/bin/python -m bench.timeline --var-dir var/bench --concurrency 8 --duration 20

In one run, against the dataset made by `bench.dataset`:
  renkei     the real API (bearer auth, access decision, decryption, presentation, audit chain)
  reference  a bare HTTP endpoint on the same server stack serving the same rows (no auth/access/decrypt/audit)
  floor      in-process SQL fetch + decrypt of the same rows (reads), or seal + insert + commit (posts)
and reports p50/p95/p99 (client-observed and server time) and throughput, with the renkei/reference and
renkei/floor ratios of DESIGN.md "Budgets".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from bench.dataset import bench_settings, payloads
from renkei.auth import service as auth_service
from renkei.config import Settings
from renkei.crypto import aead
from renkei.crypto.keyring import Keyring
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.db.types import utcnow
from renkei.directory.models import User
from renkei.patients import keys
from renkei.timeline.models import EntryRead, TimelineEntry

RENKEI_PORT, REFERENCE_PORT = 8101, 8102


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    # The server's own CPU time (its processes, not the load generator's or PostgreSQL's) over `served`
    # requests, warm-up included: what one core of the server can serve, whoever else shares the machine.
    server_cpu_s: float = 0.0
    served: int = 0

    def merge(self, other: Sample) -> None:
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors
        self.seconds += other.seconds
        self.server_cpu_s += other.server_cpu_s
        self.served += other.served

    def summary(self) -> dict[str, Any]:
        out = {**percentiles(self.latencies_ms), "requests": len(self.latencies_ms), "errors": self.errors,
               "throughput_rps": round(len(self.latencies_ms) / self.seconds, 1) if self.seconds else 0.0}
        if self.served and self.server_cpu_s:
            out["server_cpu_ms_per_request"] = round(self.server_cpu_s / self.served * 1000, 2)
            out["rps_per_server_core"] = round(self.served / self.server_cpu_s, 1)
        return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (uvicorn's workers), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        child = int(entry.name)
        children.setdefault(int(fields[1]), []).append(child)
        times[child] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


# -- set-up ------------------------------------------------------------------------------------


def sign_in(settings: Settings, roster: dict[str, Any], circles: int) -> dict[str, dict[str, Any]]:
    """Bearer tokens for the nurse of the first `circles` care circles, keyed by the patients they serve."""
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    session = make_sessionmaker(engine)()
    per = roster["patients_per_circle"]
    out: dict[str, dict[str, Any]] = {}
    for i, circle in enumerate(roster["circles"][:circles]):
        nurse = session.get(User, uuid.UUID(circle["users"]["nurse"]))
        assert nurse is not None
        auth, refresh = auth_service.start_session(session, settings=settings, user=nurse, kind="api")
        token = auth_service.issue_tokens(settings, keyring, auth, refresh).access_token
        for pid in roster["patients"][i * per:(i + 1) * per]:
            out[pid] = {"headers": {"Authorization": f"Bearer {token}"}, "author_id": str(nurse.id),
                        "organisation_id": str(nurse.organisation_id)}
    session.commit()
    session.close()
    engine.dispose()
    return out


@contextmanager
def servers(args: argparse.Namespace, results_dir: Path):
    """Start Renkei and the reference as separate uvicorn processes (yields their pids); stop them afterwards."""
    procs = []
    common = ["--var-dir", str(args.var_dir), "--workers", str(args.workers)]
    common += ["--database-url", args.database_url] if args.database_url else []
    for which, port in (("renkei", RENKEI_PORT), ("reference", REFERENCE_PORT)):
        timings = results_dir / f"{which}.timings.raw"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "bench.server", which, "--port", str(port), "--timings", str(timings), *common],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ))
    try:
        for port, path in ((RENKEI_PORT, "/healthz"), (REFERENCE_PORT, f"/ref/patients/{uuid.uuid4()}/timeline")):
            _wait(f"http://127.0.0.1:{port}{path}")
        yield {"renkei": procs[0].pid, "reference": procs[1].pid}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


# -- load ---------------------------------------------------------------------------------------


async def load(make_request, *, concurrency: int, duration: float, warmup: int) -> Sample:
    """`concurrency` clients issuing requests back to back for `duration` seconds."""
    sample = Sample()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for _ in range(warmup):
            await make_request(client)
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await make_request(client)
                    ok = response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                if ok:
                    sample.latencies_ms.append((time.perf_counter() - start) * 1000)
                else:
                    sample.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sample.seconds = time.perf_counter() - started
    return sample


def server_times(path: Path, route_part: str, skip: int) -> dict[str, float]:
    """Server-time percentiles from the JSON lines a server logged, skipping warm-up requests."""
    values = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if route_part in (record.get("route") or ""):
            values.append(float(record["ms"]))
    return percentiles(values[skip:])


def warm_cache(settings: Settings, patients: list[str]) -> float:
    """Read the sampled patients' timeline rows and read receipts once: no variant pays for a cold cache."""
    engine = make_engine(settings.sqlalchemy_url)
    started = time.perf_counter()
    ids = [uuid.UUID(p) for p in patients]
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            conn.execute(select(TimelineEntry.id, TimelineEntry.payload_ct)
                         .where(TimelineEntry.patient_id.in_(chunk))).all()
            conn.execute(select(EntryRead.entry_id, EntryRead.user_id).where(EntryRead.entry_id.in_(
                select(TimelineEntry.id).where(TimelineEntry.patient_id.in_(chunk))))).all()
        conn.rollback()
    engine.dispose()
    return round(time.perf_counter() - started, 1)


# -- floors ------------------------------------------------------------------------------------


def read_floor(settings: Settings, patients: list[str], seconds: float) -> Sample:
    """SQL fetch of the 50 newest head entries (id + ciphertext only) and decrypt each, in process."""
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    maker = make_sessionmaker(engine)
    sample = Sample()
    rng = random.Random(3)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pid = uuid.UUID(rng.choice(patients))
        t0 = time.perf_counter()
        with maker() as session:
            rows = session.execute(
                select(TimelineEntry.id, TimelineEntry.payload_ct)
                .where(TimelineEntry.patient_id == pid, TimelineEntry.is_head.is_(True),
                       TimelineEntry.record_posted_at.is_not(None))
                .order_by(TimelineEntry.record_posted_at.desc(), TimelineEntry.record_id.desc()).limit(50)
            ).all()
            data_keys: dict[str, bytes] = {}
            for entry_id, blob in rows:
                key_id = aead.key_id_of(blob)
                if key_id not in data_keys:
                    data_keys[key_id] = keys.key_by_id(session, keyring, pid, key_id)
                json.loads(aead.open_(data_keys[key_id], blob, aad="timeline_entry.payload_ct",
                                      binding=str(entry_id)))
            session.rollback()
        sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
    sample.seconds = time.perf_counter() - started
    engine.dispose()
    return sample


def post_floor(settings: Settings, patients: dict[str, dict[str, Any]], seconds: float) -> Sample:
    """Seal a message payload with the patient's key, insert the row and commit, in process."""
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    maker = make_sessionmaker(engine)
    sample = Sample()
    rng = random.Random(4)
    text = payloads()["message"]
    pids = list(patients)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        pid = rng.choice(pids)
        who = patients[pid]
        t0 = time.perf_counter()
        with maker() as session:
            entry_id, now = uuid.uuid4(), utcnow()
            sealed = keys.seal_json(session, keyring, uuid.UUID(pid), aad="timeline_entry.payload_ct",
                                    binding=str(entry_id), value=text)
            session.execute(insert(TimelineEntry).values(
                id=entry_id, patient_id=uuid.UUID(pid), record_id=entry_id, version=1, revision=1,
                sheet_id="message", sheet_version=1, category="message", status="final", priority="normal",
                is_head=True, author_id=uuid.UUID(who["author_id"]),
                author_organisation_id=uuid.UUID(who["organisation_id"]), author_profession="nurse",
                payload_ct=sealed, created_at=now, updated_at=now, record_posted_at=now, posted_at=now,
            ))
            session.commit()
        sample.latencies_ms.append((time.perf_counter() - t0) * 1000)
    sample.seconds = time.perf_counter() - started
    engine.dispose()
    return sample


# -- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings(args.var_dir, args.database_url)
    roster = json.loads((args.var_dir / "roster.json").read_text(encoding="utf-8"))
    signed_in = sign_in(settings, roster, args.circles)
    patients = list(signed_in)
    results_dir = args.out.parent
    results_dir.mkdir(parents=True, exist_ok=True)
    message = payloads()["message"]
    rng = random.Random(11)
    report: dict[str, Any] = {
        "database": settings.database_url.split("@")[-1], "entries": roster["entries"],
        "patients": len(roster["patients"]), "concurrency": args.concurrency, "duration_s": args.duration,
        "slices": args.slices, "workers": args.workers, "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }

    async def renkei_read(client: httpx.AsyncClient) -> httpx.Response:
        pid = rng.choice(patients)
        return await client.get(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/patients/{pid}/timeline?limit=50",
                                headers=signed_in[pid]["headers"])

    async def reference_read(client: httpx.AsyncClient) -> httpx.Response:
        pid = rng.choice(patients)
        return await client.get(f"http://127.0.0.1:{REFERENCE_PORT}/ref/patients/{pid}/timeline?limit=50")

    async def renkei_post(client: httpx.AsyncClient) -> httpx.Response:
        pid = rng.choice(patients)
        return await client.post(f"http://127.0.0.1:{RENKEI_PORT}/api/v1/patients/{pid}/entries",
                                 headers={**signed_in[pid]["headers"], "Idempotency-Key": uuid.uuid4().hex},
                                 json={"sheet": "message", "version": 1, "data": message})

    async def reference_post(client: httpx.AsyncClient) -> httpx.Response:
        pid = rng.choice(patients)
        who = signed_in[pid]
        return await client.post(f"http://127.0.0.1:{REFERENCE_PORT}/ref/patients/{pid}/entries",
                                  json={"sheet": "message", "data": message, "author_id": who["author_id"],
                                        "organisation_id": who["organisation_id"]})

    warmup = 50
    report["cache_warm_s"] = warm_cache(settings, patients)
    with servers(args, results_dir) as pids:
        for name, renkei_fn, reference_fn, floor_fn in (
            ("timeline_read_50", renkei_read, reference_read, lambda s: read_floor(settings, patients, s)),
            ("sheet_post", renkei_post, reference_post, lambda s: post_floor(settings, signed_in, s)),
        ):
            renkei, reference, floor = Sample(), Sample(), Sample()
            # The variants take turns in short slices, so that a machine whose speed drifts during the run
            # (a shared VM) slows all three alike and the ratios hold.
            for i in range(args.slices):
                seconds = args.duration / args.slices
                for sample, fn, pid in ((renkei, renkei_fn, pids["renkei"]),
                                        (reference, reference_fn, pids["reference"])):
                    cpu = cpu_seconds(pid)
                    done = asyncio.run(load(fn, concurrency=args.concurrency, duration=seconds,
                                            warmup=warmup if i == 0 else 0))
                    done.server_cpu_s = cpu_seconds(pid) - cpu
                    done.served = len(done.latencies_ms) + done.errors + (warmup if i == 0 else 0)
                    sample.merge(done)
                floor.merge(floor_fn(seconds))
            report[name] = {"renkei": renkei.summary(), "reference": reference.summary(), "floor": floor.summary()}
        time.sleep(1)
    read_skip = warmup
    report["timeline_read_50"]["renkei"]["server"] = server_times(
        results_dir / "renkei.timings.raw", "/timeline", read_skip)
    report["timeline_read_50"]["reference"]["server"] = server_times(
        results_dir / "reference.timings.raw", "/ref/timeline", read_skip)
    report["sheet_post"]["renkei"]["server"] = server_times(results_dir / "renkei.timings.raw", "/entries", warmup)
    report["sheet_post"]["reference"]["server"] = server_times(
        results_dir / "reference.timings.raw", "/ref/entries", warmup)
    for name in ("timeline_read_50", "sheet_post"):
        part = report[name]
        part["ratio_to_reference_p50"] = round(part["renkei"]["p50_ms"] / max(part["reference"]["p50_ms"], 1e-9), 2)
        part["ratio_to_reference_server_p50"] = round(
            part["renkei"]["server"]["p50_ms"] / max(part["reference"]["server"]["p50_ms"], 1e-9), 2)
        part["ratio_to_floor_p50"] = round(part["renkei"]["server"]["p50_ms"] / max(part["floor"]["p50_ms"], 1e-9), 2)
        part["throughput_ratio_to_reference"] = round(
            part["renkei"]["throughput_rps"] / max(part["reference"]["throughput_rps"], 1e-9), 2)
        if "server_cpu_ms_per_request" in part["renkei"] and "server_cpu_ms_per_request" in part["reference"]:
            part["server_cpu_ratio_to_reference"] = round(
                part["renkei"]["server_cpu_ms_per_request"] / part["reference"]["server_cpu_ms_per_request"], 2)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['database']}: {report['patients']:,} patients, {report['entries']:,} entries, "
             f"{report['concurrency']} concurrent clients, {report['duration_s']} s per phase in "
             f"{report.get('slices', 1)} alternating slices, {report['cpus']} CPUs "
             f"(load average before the run {report['load_average_before']})",
             "", "| benchmark | variant | p50 ms | p95 ms | p99 ms | server p50 | server p95 | server p99 | req/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("timeline_read_50", "sheet_post"):
        for variant in ("renkei", "reference", "floor"):
            r = report[name][variant]
            server = r.get("server", {})
            lines.append(f"| {name} | {variant} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                         f"{server.get('p50_ms', '–')} | {server.get('p95_ms', '–')} | {server.get('p99_ms', '–')} | "
                         f"{r['throughput_rps']} |")
    lines.append("")
    for name in ("timeline_read_50", "sheet_post"):
        part = report[name]
        lines.append(f"{name}: renkei/reference p50 {part['ratio_to_reference_p50']}× (server time "
                     f"{part['ratio_to_reference_server_p50']}×), throughput {part['throughput_ratio_to_reference']}×"
                     f" of reference; renkei server p50 / floor p50 {part['ratio_to_floor_p50']}×")
        if "server_cpu_ratio_to_reference" in part:
            renkei, reference = part["renkei"], part["reference"]
            lines.append(f"{name}: server CPU per request renkei {renkei['server_cpu_ms_per_request']} ms "
                         f"({renkei['rps_per_server_core']} req/s per core), reference "
                         f"{reference['server_cpu_ms_per_request']} ms ({reference['rps_per_server_core']} req/s "
                         f"per core): {part['server_cpu_ratio_to_reference']}×")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase and variant")
    parser.add_argument("--slices", type=int, default=10,
                        help="the variants alternate in this many slices of each phase")
    parser.add_argument("--circles", type=int, default=100, help="care circles whose nurses act as clients")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes of each server (more than one: PostgreSQL)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args(argv)
    print(table(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
