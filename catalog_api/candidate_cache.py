"""Model-server answers for home pages, reused while nothing they depend on has changed.

A home page is asked for again and again within minutes (the app comes back to
the foreground, the user navigates back), and on a small machine the model
server's candidates, features and ranking cost more CPU than the whole rest of
the page. The key holds everything the answer depends on that the API knows:
the profile, the experiment variant, the maturity level and country filters,
the seed of "Because you watched", and the profile's latest positions (a new
heartbeat changes the key, so a new watch is never answered from the cache).
What the key cannot see, a model promoted to champion, reaches pages within
``ttl_s``; the page's exposures carry the model version that actually chose
each row, cached or not.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

ValueT = TypeVar("ValueT")

#: Share of the lifetime by which entries' expiries are spread.
JITTER = 0.2


class TtlCache(Generic[ValueT]):
    """A bounded, thread-safe map whose entries expire ``ttl_s`` after they were stored.

    Args:
        ttl_s: lifetime of an entry; 0 disables the cache (every ``get`` misses, ``put`` stores nothing).
        max_entries: beyond this the least recently stored entries are dropped.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, ValueT]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> ValueT | None:
        """The live value stored under ``key``, else None."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: ValueT) -> None:
        """Store ``value`` under ``key`` for between 80 % and 100 % of ``ttl_s`` seconds.

        The lifetime is spread by the key's hash: entries stored in one burst (a start-up,
        a recovered model server) would otherwise expire in one burst too, and send their
        profiles back to the model server all at once.
        """
        if self.ttl_s <= 0:
            return
        lifetime = self.ttl_s * (1.0 - JITTER * (hash(key) % 1024) / 1024)
        with self._lock:
            self._entries[key] = (self._clock() + lifetime, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, drop: Callable[[Hashable], bool]) -> int:
        """Remove the entries whose key ``drop`` accepts (e.g. an erased account's profiles); returns how many."""
        with self._lock:
            doomed = [key for key in self._entries if drop(key)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)
