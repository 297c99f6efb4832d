"""In-process sliding-window rate limits (login attempts, per-account requests).

One API process keeps its own windows; behind several replicas the limits
apply per replica, which still stops a single client hammering one process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from catalog_api.errors import RateLimitedError


class RateLimiter:
    """Allow at most ``limit`` hits per key in any ``window_s`` seconds.

    Args:
        limit: hits allowed per window.
        window_s: the window length in seconds.
        what: how the limit is named in the 429 message.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(self, limit: int, window_s: float, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one hit for ``key``; raise ``RateLimitedError`` with Retry-After when over the limit."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                retry_after = math.ceil(hits[0] + self.window_s - now)
                raise RateLimitedError(
                    f"too many {self.what}: at most {self.limit} per {self.window_s:g} s; retry in {retry_after} s",
                    retry_after,
                )
            hits.append(now)
            if len(self._hits) > 100_000:
                self._forget_idle(now)

    def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful login)."""
        with self._lock:
            self._hits.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
            del self._hits[key]
