"""How much paper-intake decoding one process does: a few at a time, and a few per user per window.

Rasterising a PDF and scanning it for QR codes costs CPU and memory whatever the upload's size, so it
is the one intake step that is bounded here. Both bounds live in this process: with several app
processes behind a proxy, each process admits its own share (the per-user limit is per process).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from renkei.printing import exceptions

# Two decodes at once keep a 2-core machine responsive for everything else.
CONCURRENT = 2
# A request waits this long for a free slot before it is told to retry.
WAIT_SECONDS = 1.0
# A nurse filing a day's stack one form at a time stays well under this.
PER_USER = 30
WINDOW_SECONDS = 600.0


class IntakeGate:
    """A process-wide slot semaphore and a per-user sliding-window count of decodes."""

    def __init__(self, *, concurrent: int, wait: float, per_user: int, window: float) -> None:
        self.slots = threading.BoundedSemaphore(concurrent)
        self.wait = wait
        self.per_user = per_user
        self.window = window
        self._lock = threading.Lock()
        self._recent: dict[uuid.UUID, deque[float]] = {}

    def _count(self, user_id: uuid.UUID) -> float:
        now = time.monotonic()
        with self._lock:
            # Forget everyone whose window has passed, so the table stays as small as the active users.
            cutoff = now - self.window
            for key in [k for k, stamps in self._recent.items() if not stamps or stamps[-1] <= cutoff]:
                del self._recent[key]
            stamps = self._recent.setdefault(user_id, deque())
            while stamps and stamps[0] <= cutoff:
                stamps.popleft()
            if len(stamps) >= self.per_user:
                raise exceptions.IntakeRateLimited(retry_after=int(stamps[0] + self.window - now) + 1)
            stamps.append(now)
        return now

    def _refund(self, user_id: uuid.UUID, stamp: float) -> None:
        with self._lock:
            stamps = self._recent.get(user_id)
            if stamps is not None and stamp in stamps:
                stamps.remove(stamp)

    @contextmanager
    def admit(self, user_id: uuid.UUID) -> Iterator[None]:
        """Hold a decoding slot for the block: 429 over the user's limit, 503 when every slot stays busy."""
        stamp = self._count(user_id)
        if not self.slots.acquire(timeout=self.wait):
            # A busy server is not the user's doing: the attempt does not count against them.
            self._refund(user_id, stamp)
            raise exceptions.IntakeBusy()
        try:
            yield
        finally:
            self.slots.release()


GATE = IntakeGate(concurrent=CONCURRENT, wait=WAIT_SECONDS, per_user=PER_USER, window=WINDOW_SECONDS)
