"""The reads a tablet makes on every screen take one worker thread each (auth.dependencies.run_signed_in):
on a loaded two-core server each extra thread-pool hop costs about a millisecond."""

from __future__ import annotations

import anyio.to_thread
import pytest

from tests.timeline.support import posted


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """Names of the functions each request handed to a worker thread (counted, then run as usual)."""
    seen: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        seen.append(getattr(func, "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


@pytest.mark.parametrize("path", ["/api/v1/patients/{pid}/timeline?limit=50", "/api/v1/patients/{pid}/summary",
                                  "/api/v1/patients", "/api/v1/timeline/unread-counts"],
                         ids=["timeline", "summary", "patient-list", "unread-counts"])
def test_a_hot_read_takes_one_worker_thread(client, world, as_user, hops, path):
    nurse = as_user(world.nurse)
    posted(client, as_user(world.physician), world.patient_id, "acp")
    hops.clear()
    r = client.get(path.format(pid=world.patient_id), headers=nurse)
    assert r.status_code == 200, r.text
    assert r.json()
    assert len(hops) == 1, hops


def test_a_route_signed_in_through_its_dependencies_takes_more(client, world, as_user, hops):
    # The comparison that makes the count above mean something: the team list still uses ActorDep.
    hops.clear()
    r = client.get(f"/api/v1/patients/{world.patient_id}/team", headers=as_user(world.nurse))
    assert r.status_code == 200 and len(hops) > 1, hops
