"""Benchmark: commit-to-client latency of live notifications, and memory per idle socket.

    .venv/bin/python -m bench.notify --var-dir var/bench-notify --out bench/results/notify-sqlite.json
    .venv/bin/python -m bench.notify --var-dir var/bench-notify-pg \
        --database-url postgresql://postgres@127.0.0.1:5432/renkei_bench_notify \
        --out bench/results/notify-postgres.json

Scenarios (each against a fresh server; clients run in separate processes):
  team30      30 team members, one socket each; a member posts messages over HTTP
  fanout1000  250 team members with 4 sockets each (1,000 sockets) on one process
  crossproc   (PostgreSQL) the 30 sockets on process A, the posts through process B: LISTEN/NOTIFY
  floor       in process: the dispatcher's database trip (fetch + access decisions) for 30 and 250 users
  memory      RSS growth of the server per idle authenticated socket (permessage-deflate offered or not),
              and of the reference per idle socket
For team30 and fanout1000 the same clients also run against `bench.notify_server reference`, a bare
websocket broadcast after a one-row commit, and the report gives Renkei/reference ratios.

Latency = the client's receive time minus the server's commit time (both wall clock on this machine), per
delivered event; every expected delivery is counted, so a lost event shows as `missing`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text
from websockets.asyncio.client import connect

from bench.dataset import bench_settings
from bench.timeline import percentiles
from renkei.auth import passwords
from renkei.auth import service as auth_service
from renkei.config import Settings
from renkei.consent import service as consent_service
from renkei.consent.schemas import ConsentCreate
from renkei.crypto.keyring import Keyring
from renkei.db import migrations
from renkei.db.engine import make_engine
from renkei.db.session import make_sessionmaker
from renkei.directory.models import Organisation, User
from renkei.notify import delivery
from renkei.notify import service as notify_service
from renkei.patients import service as patient_service
from renkei.patients.schemas import MembershipIn, PatientCreate

PASSWORD = "bench-notify-passphrase-2026"
ORIGIN = "http://127.0.0.1:8000"
PORT_A, PORT_B, PORT_REF = 8111, 8112, 8113
PROFESSIONS = ["physician", "nurse", "pharmacist", "care_manager", "therapist", "care_worker"]


# -- data set ----------------------------------------------------------------------------------


def fresh_database(settings: Settings) -> None:
    if settings.is_sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{make_url(settings.sqlalchemy_url).database}{suffix}").unlink(missing_ok=True)
    else:
        if not (make_url(settings.sqlalchemy_url).database or "").startswith("renkei_bench"):
            raise SystemExit("refusing to reset a PostgreSQL database not named renkei_bench*")
        engine = make_engine(settings.sqlalchemy_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrations.upgrade(settings.sqlalchemy_url)


def seed(settings: Settings, members: int) -> dict[str, Any]:
    """One patient with a team of `members` professionals from 10 offices, and a blanket consent."""
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    hashed = passwords.hash_password(PASSWORD)
    with make_sessionmaker(engine)() as session:
        orgs = [Organisation(name=f"ベンチ事業所{i}", kind="home_care_clinic") for i in range(10)]
        session.add_all(orgs)
        session.flush()
        users = [User(organisation_id=orgs[i % 10].id, email=f"bench-{i}-{uuid.uuid4().hex[:6]}@bench.example",
                      name=f"ベンチ 職員{i}", role="member", password_hash=hashed,
                      profession="physician" if i == 0 else PROFESSIONS[i % len(PROFESSIONS)])
                 for i in range(members)]
        session.add_all(users)
        session.flush()
        registrar = _actor(users[0])
        patient = patient_service.register(session, keyring=keyring, actor=registrar,
                                           data=PatientCreate.model_validate({
                                               "name": "ベンチ 花子", "name_kana": "ベンチ ハナコ",
                                               "birth_date": "1940-01-01", "sex": "female", "address": "みどり市",
                                               "team_role": "attending_physician"}))
        for user in users[1:]:
            patient_service.add_member(session, actor=registrar, patient_id=patient.id, data=MembershipIn(
                user_id=user.id, team_role="other", start_date=date.today()))
        consent_service.record(session, settings=settings, keyring=keyring, actor=registrar,
                               patient_id=patient.id, data=ConsentCreate.model_validate({
                                   "given_by": "patient", "method": "written", "scope": "blanket",
                                   "obtained_on": date.today().isoformat(), "password": PASSWORD}))
        session.commit()
        roster = {"patient_id": str(patient.id), "users": [str(u.id) for u in users]}
    engine.dispose()
    return roster


def _actor(user: User) -> auth_service.Actor:
    return auth_service.Actor(user_id=user.id, organisation_id=user.organisation_id,
                              profession=user.profession, role=user.role, name=user.name,
                              session_id=uuid.uuid4(), session_kind="api")


def sign_in(settings: Settings, user_ids: list[str]) -> list[dict[str, str]]:
    keyring = Keyring.open(settings.key_file)  # type: ignore[arg-type]
    engine = make_engine(settings.sqlalchemy_url)
    out = []
    with make_sessionmaker(engine)() as session:
        for uid in user_ids:
            user = session.get(User, uuid.UUID(uid))
            assert user is not None
            auth, refresh = auth_service.start_session(session, settings=settings, user=user, kind="api")
            token = auth_service.issue_tokens(settings, keyring, auth, refresh).access_token
            out.append({"Authorization": f"Bearer {token}"})
        session.commit()
    engine.dispose()
    return out


# -- servers -----------------------------------------------------------------------------------


@contextmanager
def server(which: str, port: int, args: argparse.Namespace, commits: Path, *, deflate: bool = True,
           env: dict[str, str] | None = None):
    cmd = [sys.executable, "-m", "bench.notify_server", which, "--port", str(port),
           "--var-dir", str(args.var_dir), "--commits", str(commits)]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if not deflate:
        cmd.append("--no-deflate")
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{which} server on {port} did not start")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- clients (separate processes) ---------------------------------------------------------------


async def _open(http: httpx.AsyncClient, target: dict[str, Any], compression: str | None) -> Any:
    value = "reference"
    if target["headers"] is not None:
        r = await http.post(f"{target['http']}/api/v1/ws-ticket", headers=target["headers"])
        r.raise_for_status()
        value = r.json()["ticket"]
    ws = await connect(target["ws"], origin=ORIGIN, compression=compression,  # type: ignore[arg-type]
                       max_queue=None)
    await ws.send(json.dumps({"type": "auth", "ticket": value}))
    while json.loads(await ws.recv())["type"] != "ready":
        pass
    return ws


async def _client(spec: dict[str, Any], pipe: Any) -> None:
    records: list[tuple[int, int, str]] = []
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=60) as http:
        async def opened(target: dict[str, Any]) -> Any:
            async with gate:
                return await _open(http, target, spec["compression"])

        sockets = await asyncio.gather(*(opened(t) for t in spec["targets"]))

    async def reader(index: int, ws: Any) -> None:
        try:
            async for raw in ws:
                records.append((index, time.time_ns(), raw))  # stamp first, parse after the run
        except Exception:
            pass

    tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
    pipe.send(("ready", len(sockets)))
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    received = []
    for index, stamp, raw in records:
        msg = json.loads(raw)
        if msg.get("type") == "entry.created":
            received.append((f"{spec['name']}-{index}", msg["seq"], stamp))
    pipe.send(("done", received))


def client_process(spec: dict[str, Any], pipe: Any) -> None:
    asyncio.run(_client(spec, pipe))


@contextmanager
def clients(targets: list[dict[str, Any]], *, processes: int, compression: str | None = "deflate"):
    ctx = mp.get_context("spawn")
    chunks = [targets[i::processes] for i in range(processes)]
    workers = []
    for n, chunk in enumerate(chunks):
        parent, child = ctx.Pipe()
        spec = {"name": n, "targets": chunk, "compression": compression}
        proc = ctx.Process(target=client_process, args=(spec, child))
        proc.start()
        workers.append((proc, parent))
    try:
        for _, pipe in workers:
            kind, _count = pipe.recv()
            assert kind == "ready"
        received: list[tuple[str, int, int]] = []
        yield received
        for _, pipe in workers:
            pipe.send("stop")
        for _, pipe in workers:
            kind, part = pipe.recv()
            received.extend(part)
    finally:
        for proc, _ in workers:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def post_messages(url: str, headers: dict[str, str] | None, count: int, gap: float) -> None:
    with httpx.Client(timeout=60) as http:
        for i in range(count):
            if headers is None:
                r = http.post(url)
            else:
                r = http.post(url, headers=headers, json={"sheet": "message", "data": {"text": f"ベンチ{i}"}})
            r.raise_for_status()
            time.sleep(gap)


def latency(received: list[tuple[str, int, int]], commits: Path, expected: int) -> dict[str, Any]:
    committed = {}
    for line in commits.read_text().splitlines():
        seq, stamp = line.split()
        committed[int(seq)] = int(stamp)
    values = [(stamp - committed[seq]) / 1e6 for _, seq, stamp in received if seq in committed]
    duplicates = len(received) - len({(sock, seq) for sock, seq, _ in received})
    return {**percentiles(values), "max_ms": round(max(values), 2) if values else 0.0,
            "deliveries": len(values), "expected": expected, "missing": expected - len(values),
            "duplicates": duplicates}


# -- scenarios ---------------------------------------------------------------------------------


def fanout(args: argparse.Namespace, roster: dict[str, Any], *, users: int, per_user: int, processes: int,
           posts: int, gap: float) -> dict[str, Any]:
    settings = bench_settings(args.var_dir, args.database_url)
    out: dict[str, Any] = {"sockets": users * per_user, "users": users, "posts": posts, "gap_s": gap}
    for which in ("renkei", "reference"):
        commits = args.var_dir / f"commits-{which}-{users * per_user}.log"
        commits.unlink(missing_ok=True)
        port = PORT_A if which == "renkei" else PORT_REF
        env = {"RENKEI_WS_MAX_CONNECTIONS_PER_USER": str(max(per_user, 1))}
        with server(which, port, args, commits, env=env):
            base = f"http://127.0.0.1:{port}"
            if which == "renkei":
                headers = sign_in(settings, roster["users"][:users])
                targets = [{"http": base, "ws": f"ws://127.0.0.1:{port}/ws", "headers": h}
                           for h in headers for _ in range(per_user)]
                poster = sign_in(settings, roster["users"][:1])[0]
                url = f"{base}/api/v1/patients/{roster['patient_id']}/entries"
            else:
                targets = [{"ws": f"ws://127.0.0.1:{port}/ref/ws", "headers": None}] * (users * per_user)
                poster, url = None, f"{base}/ref/post"
            with clients(targets, processes=processes) as received:
                post_messages(url, poster, posts, gap)
                time.sleep(2.0)
            out[which] = latency(received, commits, posts * len(targets))
    if out["reference"]["p95_ms"]:
        ratio = out["renkei"]["p95_ms"] / out["reference"]["p95_ms"]
        out["ratio_p95_renkei_over_reference"] = round(ratio, 2)
    return out


def crossproc(args: argparse.Namespace, roster: dict[str, Any], *, posts: int, gap: float) -> dict[str, Any]:
    settings = bench_settings(args.var_dir, args.database_url)
    commits_a, commits_b = args.var_dir / "commits-cross-a.log", args.var_dir / "commits-cross-b.log"
    for path in (commits_a, commits_b):
        path.unlink(missing_ok=True)
    with server("renkei", PORT_A, args, commits_a), server("renkei", PORT_B, args, commits_b):
        headers = sign_in(settings, roster["users"][:30])
        targets = [{"http": f"http://127.0.0.1:{PORT_A}", "ws": f"ws://127.0.0.1:{PORT_A}/ws", "headers": h}
                   for h in headers]
        poster = sign_in(settings, roster["users"][:1])[0]
        with clients(targets, processes=1) as received:
            post_messages(f"http://127.0.0.1:{PORT_B}/api/v1/patients/{roster['patient_id']}/entries", poster,
                          posts, gap)
            time.sleep(2.0)
    return {"sockets": 30, "posts": posts, "gap_s": gap, "renkei": latency(received, commits_b, posts * 30)}


def memory(args: argparse.Namespace, roster: dict[str, Any], *, sockets: int) -> dict[str, Any]:
    settings = bench_settings(args.var_dir, args.database_url)
    users = sockets // 4
    out: dict[str, Any] = {"sockets": sockets}
    variants = (("renkei", "deflate_off", False, None), ("renkei", "deflate_offered", True, "deflate"),
                ("reference", "reference_deflate_off", False, None))
    for which, label, deflate, compression in variants:
        commits = args.var_dir / f"commits-memory-{label}.log"
        port = PORT_A if which == "renkei" else PORT_REF
        with server(which, port, args, commits, deflate=deflate,
                    env={"RENKEI_WS_MAX_CONNECTIONS_PER_USER": "4"}) as proc:
            base = f"http://127.0.0.1:{port}"
            if which == "renkei":
                targets = [{"http": base, "ws": f"ws://127.0.0.1:{port}/ws", "headers": h}
                           for h in sign_in(settings, roster["users"][:users])]
            else:
                targets = [{"ws": f"ws://127.0.0.1:{port}/ref/ws", "headers": None}] * users
            half = [t for t in targets for _ in range(2)]
            # Marginal cost: with half the sockets open (the heap has grown for tickets, redemptions and
            # replays), open as many again and divide the growth by their number.
            with clients(half, processes=1, compression=compression):
                time.sleep(2.0)
                before = rss_kib(proc.pid)
                with clients(half, processes=1, compression=compression):
                    time.sleep(3.0)
                    after = rss_kib(proc.pid)
            out[label] = {"open_before": len(half), "rss_before_kib": before, "added": len(half),
                          "rss_after_kib": after, "kib_per_socket": round((after - before) / len(half), 1)}
    return out


def floor(args: argparse.Namespace, roster: dict[str, Any], *, users: int, rounds: int = 20,
          ) -> dict[str, Any]:
    """In process, no server or network: the dispatcher's one database trip for the newest event fanned out
    to `users` signed-in users (fetch, candidates, `access.can` per user), with no cached decision (cold)
    and with the decisions of the previous trip (warm)."""
    settings = bench_settings(args.var_dir, args.database_url)
    engine = make_engine(settings.sqlalchemy_url)
    maker = make_sessionmaker(engine)
    with maker() as session:
        actors = {}
        for uid in roster["users"][:users]:
            user = session.get(User, uuid.UUID(uid))
            assert user is not None
            actors[user.id] = delivery.member_actor(user)
        after = notify_service.head(session) - 1
    cold, warm = [], []
    for _ in range(rounds):
        decisions = delivery.Decisions(ttl=60.0)
        for bucket in (cold, warm):
            with maker() as session:
                start = time.perf_counter()
                events, plan = delivery.fetch_and_plan(session, decisions, after=after, limit=1,
                                                       actors=actors)
                bucket.append((time.perf_counter() - start) * 1000)
            assert events and plan and len(plan[0][1]) == users
    engine.dispose()
    return {"users": users, "cold": percentiles(cold), "warm": percentiles(warm)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var-dir", type=Path, default=Path("var/bench-notify"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--scenarios", default="team30,fanout1000,crossproc,floor,memory")
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.var_dir.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(args.var_dir, args.database_url)
    fresh_database(settings)
    roster = seed(settings, members=250)
    wanted = args.scenarios.split(",")
    report: dict[str, Any] = {"database": "postgresql" if args.database_url else "sqlite",
                              "cpus": os.cpu_count(),
                              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    if "team30" in wanted:
        report["team30"] = fanout(args, roster, users=30, per_user=1, processes=1, posts=args.posts, gap=0.05)
    if "fanout1000" in wanted:
        report["fanout1000"] = fanout(args, roster, users=250, per_user=4, processes=2, posts=args.posts // 2,
                                      gap=0.2)
    if "crossproc" in wanted and args.database_url:
        report["crossproc"] = crossproc(args, roster, posts=args.posts, gap=0.05)
    if "floor" in wanted:
        report["floor"] = [floor(args, roster, users=30), floor(args, roster, users=250)]
    if "memory" in wanted:
        report["memory_per_idle_socket"] = memory(args, roster, sockets=1000)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
