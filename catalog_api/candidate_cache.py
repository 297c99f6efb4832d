"""Model-server answers for home pages, reused while nothing they depend on has changed.

A home page is asked for again and again within minutes (the app comes back to
the foreground, the user navigates back), and on a small machine the model
server's candidates, features and ranking cost more CPU than the whole rest of
the page. The key holds everything the answer depends on that the API knows:
the profile, the experiment variant, the maturity level and country filters,
the seed of "Because you watched", and the profile's latest positions (a new
heartbeat changes the key, so a new watch is never answered from the cache).
What the key cannot see, a model promoted to champion, reaches pages within
``ttl_s`` plus one refresh; the page's exposures carry the model version that
actually chose each row, cached or not. The default lifetime (2 min,
``ApiOptions.candidate_ttl_s``) matches how long the model server itself
remembers a profile's ranked candidates (``serving.pipeline.MEMO_TTL_S``):
asking sooner mostly returns the same answer, at the price of a call per
profile and API worker every lifetime (with 1,000 profiles and a 30 s lifetime,
a third of all pages caused one).

Storage, expiry and the size bound are ``cachetools.TLRUCache``'s (an entry lives
until the end of its stale window, least recently used entries go first beyond
``max_entries``); this module adds only what the library has no notion of: the
fresh/stale split, lifetimes spread per key, and one refresh per key at a time.

One entry per slot (optional): a key may name a *slot* (for these caches, the
key without the latest positions: one profile's page on one device, variant and
filter set). Storing a key replaces whatever the slot held, so an entry whose
history has moved on (every heartbeat makes a new key; the old one is never
asked for again) does not sit in memory until it expires. Without slots, a
profile watching for ten minutes left about a thousand dead entries behind
(one per heartbeat-and-page), and the caches filled to their size bound.

Stale while revalidate: an entry past its lifetime is still served for up to
``stale_s`` more seconds while one background call (per key, whatever the
traffic) asks the model server again. So an expiry never makes a page wait on
the model server, and a burst of expiries cannot pile calls onto it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

ValueT = TypeVar("ValueT")

#: Share of the lifetime by which entries' expiries are spread.
JITTER = 0.2


class TtlCache(Generic[ValueT]):
    """A bounded, thread-safe map whose entries are fresh for ``ttl_s`` after they were stored, then stale.

    Args:
        ttl_s: lifetime of an entry; 0 disables the cache (every ``get`` misses, ``put`` stores nothing).
        max_entries: beyond this the least recently used entries are dropped.
        clock: monotonic clock, injectable for tests.
        stale_s: how long past its lifetime ``lookup`` still returns an entry, marked stale
            (default: ``ttl_s``); ``get`` never returns stale entries.
        slot: the slot of a key (one entry per slot, the latest stored wins); default: the key itself.
    """

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        stale_s: float | None = None,
        slot: Callable[[Hashable], Hashable] | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.stale_s = ttl_s if stale_s is None else stale_s
        self.max_entries = max_entries
        self._clock = clock
        self._slot: Callable[[Hashable], Hashable] = slot or (lambda key: key)
        # Stored under the key's slot as ``(key, fresh_until, value)``; the library drops it at the
        # end of its stale window. A lookup whose key is not the one its slot holds misses.
        self._entries: TLRUCache[Hashable, tuple[Hashable, float, ValueT]] = TLRUCache(
            maxsize=max(1, max_entries), ttu=lambda _slot, entry, _now: entry[1] + self.stale_s, timer=clock
        )
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def _entry_locked(self, key: Hashable) -> tuple[Hashable, float, ValueT] | None:
        entry = self._entries.get(self._slot(key))
        return entry if entry is not None and entry[0] == key else None

    def get(self, key: Hashable) -> ValueT | None:
        """The live value stored under ``key``, else None (never a stale one)."""
        found = self.lookup(key)
        return found[0] if found is not None and found[1] else None

    def lookup(self, key: Hashable) -> tuple[ValueT, bool] | None:
        """``(value, fresh)`` for ``key``: fresh within its lifetime, stale up to ``stale_s`` after; else None."""
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entry_locked(key)
        if entry is None:
            return None
        return entry[2], entry[1] > self._clock()

    def claim_refresh(self, key: Hashable) -> bool:
        """True for the one caller that should refresh ``key`` now (single flight); ``end_refresh`` after."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def end_refresh(self, key: Hashable, value: ValueT | None = None) -> None:
        """Finish a refresh: store ``value`` (if any) unless the key was forgotten meanwhile (an erased profile).

        A value equal to the one stored renews the stored object itself: whatever was
        built from it and checks it by identity (a cached home page) stays valid.
        """
        with self._lock:
            self._refreshing.discard(key)
            entry = self._entry_locked(key)
            if value is not None and entry is not None and self.ttl_s > 0:
                self._store_locked(key, entry[2] if entry[2] == value else value)

    def put(self, key: Hashable, value: ValueT) -> None:
        """Store ``value`` under ``key`` (replacing its slot's entry), fresh for 80 % to 100 % of ``ttl_s`` seconds.

        The lifetime is spread by the key's hash: entries stored in one burst (a start-up,
        a recovered model server) would otherwise expire in one burst too, and send their
        profiles back to the model server all at once.
        """
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._store_locked(key, value)

    def _store_locked(self, key: Hashable, value: ValueT) -> None:
        lifetime = self.ttl_s * (1.0 - JITTER * (hash(key) % 1024) / 1024)
        self._entries[self._slot(key)] = (key, self._clock() + lifetime, value)

    def forget(self, drop: Callable[[Hashable], bool]) -> int:
        """Remove the entries whose key ``drop`` accepts (e.g. an erased account's profiles); returns how many."""
        with self._lock:
            doomed = [slot for slot, entry in list(self._entries.items()) if drop(entry[0])]
            for slot in doomed:
                self._entries.pop(slot, None)
        return len(doomed)

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)
