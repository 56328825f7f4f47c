"""One transaction per request (db/session.py): all or nothing, and its end never waits behind the thread pool."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from fastapi import APIRouter, Request
from sqlalchemy import func, select

from renkei.auth.dependencies import run_signed_in
from renkei.db import session as db_session
from renkei.db.session import SessionDep, after_rollback
from renkei.directory.models import Organisation
from renkei.errors import DomainError
from tests.factories import auth_headers

SRC = Path(__file__).resolve().parents[1] / "src" / "renkei"
# The only places allowed to commit: the request's session dependency, the command line (its own unit of
# work), the key rotation's committed batches and the event hub's own bookkeeping sessions.
COMMITTERS = {"db/session.py", "cli.py", "patients/keys.py", "notify/hub.py"}


class _Refused(DomainError):
    status = 409
    code = "refused"


def _routes(app, seen: list[str]) -> None:
    router = APIRouter()

    @router.post("/api/v1/__test/write-then-fail")
    def write_then_fail(session: SessionDep) -> None:
        session.add(Organisation(name="途中で失敗する事業所", kind="clinic"))
        session.flush()
        after_rollback(session, lambda s: seen.append("replayed"))
        raise _Refused("refused")

    @router.post("/api/v1/__test/write")
    def write(session: SessionDep) -> dict[str, str]:
        session.add(Organisation(name="最後まで成功する事業所", kind="clinic"))
        return {"ok": "yes"}

    app.include_router(router)


def _count(db, name: str) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Organisation).where(Organisation.name == name))


def test_a_request_failing_after_a_write_leaves_nothing_behind_but_its_after_rollback_work(app, client, db):
    seen: list[str] = []
    _routes(app, seen)
    woken: list[str] = []
    app.state.after_commit_hooks.append(lambda session: woken.append("after-commit"))
    r = client.post("/api/v1/__test/write-then-fail")
    assert r.status_code == 409 and r.json()["error"] == "refused"
    assert _count(db, "途中で失敗する事業所") == 0
    # The replayed work committed on its own, and the hub was woken for whatever it appended.
    assert seen == ["replayed"] and woken == ["after-commit"]


def test_a_successful_request_is_committed_before_the_response(app, client, db):
    _routes(app, [])
    assert client.post("/api/v1/__test/write").status_code == 200
    assert _count(db, "最後まで成功する事業所") == 1


def test_the_end_of_a_transaction_does_not_wait_for_the_shared_thread_pool():
    """Requests holding every thread of the shared pool while they wait for the database must not keep the
    request that holds the database from committing (SQLite's write lock, a pooled connection)."""
    release = threading.Event()
    watchdog = threading.Timer(3.0, release.set)  # frees the pool if the end did wait for it: no hang
    ended_while_blocked: list[bool] = []

    async def main() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, release.wait)  # the only shared thread, blocked
            await anyio.sleep(0.05)
            await db_session._end_in_thread(lambda: None)
            ended_while_blocked.append(not release.is_set())
            release.set()

    watchdog.start()
    try:
        anyio.run(main)
    finally:
        release.set()
        watchdog.cancel()
    assert ended_while_blocked == [True]


def test_nothing_outside_the_unit_of_work_owners_commits():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in COMMITTERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("rel", sorted(COMMITTERS))
def test_the_allowed_committers_exist(rel):
    # A renamed module would otherwise leave a stale exemption behind.
    assert (SRC / rel).is_file()


# -- one worker thread for a read route (auth.dependencies.run_signed_in + db.session.worker_session) -----


def _one_hop_routes(app, seen: list[str], threads: list[int]) -> None:
    router = APIRouter()

    def work(name: str, fail: bool):
        def run(session, actor) -> dict[str, str]:
            threads.append(threading.get_ident())
            session.add(Organisation(name=name, kind="clinic"))
            session.flush()
            after_rollback(session, lambda s: seen.append("replayed"))
            if fail:
                raise _Refused("refused")
            seen.append(f"ran as {actor.name}")
            return {"ok": "yes"}
        return run

    @router.get("/api/v1/__test/one-hop")
    async def one_hop(request: Request, fail: bool = False) -> dict[str, str]:
        return await run_signed_in(request, work("一度で終える事業所", fail))

    @router.post("/api/v1/__test/one-hop")
    async def one_hop_write(request: Request) -> dict[str, str]:
        return await run_signed_in(request, work("書き込みは断る事業所", False))

    app.include_router(router)


def test_a_one_hop_read_signs_in_works_and_commits_in_one_thread_once(
        app, client, db, settings, keyring, world):
    seen: list[str] = []
    threads: list[int] = []
    _one_hop_routes(app, seen, threads)
    committed: list[int] = []
    app.state.after_commit_hooks.append(lambda session: committed.append(threading.get_ident()))
    r = client.get("/api/v1/__test/one-hop", headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 200, r.text
    assert _count(db, "一度で終える事業所") == 1
    assert seen == [f"ran as {world.nurse.name}"]
    # Committed once, in the thread that did the work.
    assert committed == threads


def test_a_one_hop_read_that_fails_stores_nothing_and_replays_its_after_rollback_work_once(
        app, client, db, settings, keyring, world):
    seen: list[str] = []
    _one_hop_routes(app, seen, [])
    headers = auth_headers(db, settings, keyring, world.nurse)
    r = client.get("/api/v1/__test/one-hop?fail=true", headers=headers)
    assert r.status_code == 409 and r.json()["error"] == "refused"
    assert _count(db, "一度で終える事業所") == 0
    assert seen == ["replayed"]


def test_a_one_hop_read_whose_commit_fails_is_rolled_back_once(app, client, db, settings, keyring, world):
    seen: list[str] = []
    _one_hop_routes(app, seen, [])

    refused: list[bool] = []

    def refuse(session) -> None:
        # The commit of the work fails; the replay's own commit after the rollback goes through.
        if not refused:
            refused.append(True)
            raise _Refused("refused")

    app.state.precommit_hooks.append(refuse)
    r = client.get("/api/v1/__test/one-hop", headers=auth_headers(db, settings, keyring, world.nurse))
    assert r.status_code == 409
    assert _count(db, "一度で終える事業所") == 0
    assert seen.count("replayed") == 1


def test_a_one_hop_route_refuses_anonymous_callers_and_writes(app, client, db, settings, keyring, world):
    seen: list[str] = []
    _one_hop_routes(app, seen, [])
    assert client.get("/api/v1/__test/one-hop").status_code == 401
    with pytest.raises(RuntimeError, match="safe methods"):
        client.post("/api/v1/__test/one-hop", headers=auth_headers(db, settings, keyring, world.nurse))
    assert _count(db, "書き込みは断る事業所") == 0 and "ran as" not in " ".join(seen)


@pytest.mark.parametrize("how", ["signed-out", "account-disabled"])
def test_a_one_hop_read_refuses_a_session_ended_after_its_token_was_issued(
        app, client, db, settings, keyring, world, how):
    from renkei.auth import service as auth_service
    from renkei.auth.models import AuthSession

    seen: list[str] = []
    _one_hop_routes(app, seen, [])
    headers = auth_headers(db, settings, keyring, world.nurse)
    if how == "signed-out":
        for row in db.scalars(select(AuthSession).where(AuthSession.user_id == world.nurse.id)):
            auth_service.revoke_session(db, row.id, reason="logout")
    else:
        world.nurse.active = False
    db.flush()
    r = client.get("/api/v1/__test/one-hop", headers=headers)
    assert r.status_code == 401 and seen == []
    assert _count(db, "一度で終える事業所") == 0
