"""Moving-window rate limits in process memory, without a timer thread.

``limits``' ``MemoryStorage`` expires its entries from a ``threading.Timer`` that
fires 10 ms after it is started and is started again by the next hit once it
has fired. The per-account limit is hit by every authenticated request, so
under load nearly every request started a thread (a ``clone``, a stack, a GIL
hand-off, then the timer's sweep taking the GIL from the event loop 10 ms
later): measured on the home page, that was more of a worker's CPU than
building the rows. Here each hit prunes its own key's window, and a sweep of
the keys nobody hits any more runs inline at most once a second, so nothing
runs beside the request path and memory stays bounded (at most ``limit`` hit
times per key, keys dropped once their window is empty).

The semantics are those of ``limits.strategies.MovingWindowRateLimiter`` (which
``LimitStore`` uses for the shared store): a hit is allowed while fewer than
``item.amount`` hits fall within the last ``item.get_expiry()`` seconds.
Callers serialise access (``LimitStore`` holds a lock around every call).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem
from limits.util import WindowStats

#: Seconds between sweeps of the keys whose window emptied (memory bound, not correctness).
SWEEP_EVERY_S = 1.0


class MemoryWindows:
    """An in-memory store answering ``MovingWindowRateLimiter``'s calls (hit, test, get_window_stats, clear)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: Storage key → (window length in seconds, the times of its hits in the window, oldest first).
        self._hits: dict[str, tuple[float, deque[float]]] = {}
        self._swept_at = clock()

    def __len__(self) -> int:
        """Keys currently held."""
        return len(self._hits)

    def _window(self, item: RateLimitItem, key: str, now: float) -> deque[float] | None:
        """The hit times of ``key`` still in its window (older ones dropped), or None when it has none."""
        held = self._hits.get(item.key_for(key))
        if held is None:
            return None
        expiry, times = held
        start = now - expiry
        while times and times[0] <= start:
            times.popleft()
        return times

    def hit(self, item: RateLimitItem, key: str) -> bool:
        """Count one hit; False (and nothing counted) when ``item.amount`` hits are already in the window."""
        now = self._clock()
        if now - self._swept_at >= SWEEP_EVERY_S:
            self._sweep(now)
        times = self._window(item, key, now)
        if times is None:
            times = deque()
            self._hits[item.key_for(key)] = (float(item.get_expiry()), times)
        if len(times) >= item.amount:
            return False
        times.append(now)
        return True

    def test(self, item: RateLimitItem, key: str) -> bool:
        """Whether one more hit would be allowed, without counting it."""
        times = self._window(item, key, self._clock())
        return times is None or len(times) < item.amount

    def get_window_stats(self, item: RateLimitItem, key: str) -> WindowStats:
        """When the window of ``key`` frees a hit (its oldest hit's expiry) and how many hits remain."""
        now = self._clock()
        times = self._window(item, key, now)
        if not times:
            return WindowStats(now + item.get_expiry(), item.amount)
        return WindowStats(times[0] + item.get_expiry(), item.amount - len(times))

    def clear(self, item: RateLimitItem, key: str) -> None:
        """Forget the hits of ``key``."""
        self._hits.pop(item.key_for(key), None)

    def _sweep(self, now: float) -> None:
        """Drop the keys whose latest hit has left their window."""
        self._swept_at = now
        gone = [key for key, (expiry, times) in self._hits.items() if not times or times[-1] <= now - expiry]
        for key in gone:
            del self._hits[key]
