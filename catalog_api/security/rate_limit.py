"""Rate limits on the ``limits`` library: shared through Redis, process memory as a fallback.

Login limits must hold across every worker and replica and survive a restart,
so they live in Redis when ``MARQUEE_RATE_LIMIT_URL`` names one. Without it
(development) they live in process memory: each worker then counts on its
own. When a configured Redis stops answering, the limiter falls back to
process memory (logged once) and goes back to Redis when it answers again: a
Redis outage weakens the limits to per-process ones instead of failing logins.

Failed logins are counted per e-mail *and* client address with tiers that
act as an exponential backoff (a few tries a minute, more per hour, more per
day): a stranger guessing a victim's password only delays himself, never the
victim on her own address.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from catalog_api.errors import RateLimitedError

logger = logging.getLogger(__name__)

#: Failed logins allowed per (e-mail, address): (tries, window in seconds), the backoff tiers.
LOGIN_BACKOFF: tuple[tuple[int, int], ...] = ((5, 60), (20, 3600), (50, 86_400))
#: How long after a Redis failure the limiter tries Redis again.
REDIS_RETRY_S = 5.0
#: How often the process-memory store sweeps out expired hits (``SweptMemoryStorage``).
MEMORY_SWEEP_S = 1.0


class SweptMemoryStorage(MemoryStorage):
    """``limits``' process-memory store, swept of expired hits at most once per ``sweep_s``, in the caller.

    ``MemoryStorage`` (limits 5.8) starts a 10 ms ``threading.Timer`` from every
    hit that finds the previous one finished, so at 100 requests/s nearly every
    request started a thread whose sweep then took the GIL from the event loop
    (7.7 % of the API's CPU samples on cold home pages). The sweep only frees
    memory: the moving window (``acquire_entry``, ``get_moving_window``) compares
    each hit's own time with the window on every call, so hits left until the
    next sweep change no answer. Here the hit that finds the last sweep
    ``sweep_s`` old runs the library's sweep itself: no thread, and a key's hits
    go at most ``sweep_s`` after they leave the window. The sweep also drops the
    keys it left without hits, which the library's sweep keeps as empty lists (one per
    key ever seen: memory that grew with every account and address).

    Not thread-safe on its own, like the library's store it replaces:
    ``LimitStore`` serialises its calls. The hook replaced is the library's
    private ``__schedule_expiry``; ``limits`` is pinned, and a test fails if a
    hit starts a thread again.
    """

    def __init__(self, sweep_s: float = MEMORY_SWEEP_S) -> None:
        self.sweep_s = sweep_s
        self._next_sweep = 0.0
        super().__init__()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the library's private hook, name-mangled
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_s
            self.sweep()

    def sweep(self) -> None:
        """Drop the hits that left their window (the library's sweep), then the keys left without hits."""
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined] # the library's private sweep
        for key in [key for key, hits in self.events.items() if not hits]:
            del self.events[key]


if not hasattr(MemoryStorage, "_MemoryStorage__schedule_expiry"):  # pragma: no cover - a changed library
    raise ImportError("limits.storage.MemoryStorage no longer has the expiry hook SweptMemoryStorage replaces")


class LimitStore:
    """The storage of the limits: Redis (shared) when configured and answering, else process memory."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._memory = MovingWindowRateLimiter(SweptMemoryStorage())
        # MemoryStorage (limits 5.8) restarted its expiry timer unlocked: two threads of the pool
        # racing there raised "threads can only be started once" (a 500); SweptMemoryStorage sweeps
        # in the caller. Its calls take microseconds, so they are serialised.
        self._memory_lock = threading.Lock()
        self._shared: MovingWindowRateLimiter | None = None
        self._down_until = 0.0
        if url:
            storage = storage_from_string(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if not isinstance(storage, Storage):
                raise ValueError(f"rate-limit store {url!r} is not a synchronous storage")
            self._shared = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """Whether limits are currently kept in the shared store."""
        return self._shared is not None and time.monotonic() >= self._down_until

    def _run(self, call: str, item: RateLimitItem, key: str) -> object:
        if self._shared is not None and time.monotonic() >= self._down_until:
            try:
                return getattr(self._shared, call)(item, key)
            except Exception as exc:  # redis-py raises ConnectionError, TimeoutError, ...
                if self._down_until == 0.0 or time.monotonic() >= self._down_until:
                    logger.warning("rate-limit store %s unavailable (%s); limits are per process", self.url, exc)
                self._down_until = time.monotonic() + REDIS_RETRY_S
        with self._memory_lock:
            return getattr(self._memory, call)(item, key)

    def hit(self, item: RateLimitItem, key: str) -> bool:
        """Count a hit; False when the limit was already reached."""
        return bool(self._run("hit", item, key))

    def test(self, item: RateLimitItem, key: str) -> bool:
        """Whether one more hit would be allowed, without counting it."""
        return bool(self._run("test", item, key))

    def retry_after(self, item: RateLimitItem, key: str) -> int:
        """Seconds until the window of ``key`` allows a hit again."""
        stats = self._run("get_window_stats", item, key)
        reset = float(getattr(stats, "reset_time", time.time() + item.get_expiry()))
        return max(1, math.ceil(reset - time.time()))

    def clear(self, item: RateLimitItem, key: str) -> None:
        """Forget ``key``'s hits."""
        self._run("clear", item, key)


class RateLimiter:
    """Allow at most ``limit`` hits per key in any ``window_s`` seconds (a moving window).

    Args:
        limit: hits allowed per window.
        window_s: the window length in seconds.
        what: how the limit is named in the 429 message.
        store: where the hits are counted; default process memory.
    """

    def __init__(self, limit: int, window_s: float, what: str, store: LimitStore | None = None) -> None:
        self.limit = limit
        self.window_s = window_s
        self.what = what
        self.store = store or LimitStore()
        self._item = RateLimitItemPerSecond(limit, max(1, math.ceil(window_s)))
        self._namespace = what.replace(" ", "_")

    def hit(self, key: str) -> None:
        """Count one hit for ``key``; raise ``RateLimitedError`` with Retry-After when over the limit."""
        full_key = f"{self._namespace}:{key}"
        if not self.store.hit(self._item, full_key):
            retry_after = self.store.retry_after(self._item, full_key)
            raise RateLimitedError(
                f"too many {self.what}: at most {self.limit} per {self.window_s:g} s; retry in {retry_after} s",
                retry_after,
            )

    def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful login)."""
        self.store.clear(self._item, f"{self._namespace}:{key}")


class LoginGuard:
    """Backoff of failed logins per (e-mail, client address), in tiers (``LOGIN_BACKOFF``)."""

    def __init__(self, store: LimitStore, tiers: Sequence[tuple[int, int]] = LOGIN_BACKOFF) -> None:
        self.store = store
        self.tiers = [RateLimitItemPerSecond(tries, window) for tries, window in tiers]

    @staticmethod
    def _key(email: str, address: str) -> str:
        return f"login_failures:{email.strip().lower()}|{address}"

    def check(self, email: str, address: str) -> None:
        """Raise 429 with Retry-After while this e-mail has too many recent failures from this address."""
        key = self._key(email, address)
        for tier in self.tiers:
            if not self.store.test(tier, key):
                retry_after = self.store.retry_after(tier, key)
                raise RateLimitedError(
                    f"too many failed logins from this address; retry in {retry_after} s", retry_after
                )

    def failed(self, email: str, address: str) -> None:
        """Count one failed login."""
        key = self._key(email, address)
        for tier in self.tiers:
            self.store.hit(tier, key)

    def succeeded(self, email: str, address: str) -> None:
        """A correct password clears the failures of this e-mail from this address."""
        key = self._key(email, address)
        for tier in self.tiers:
            self.store.clear(tier, key)
