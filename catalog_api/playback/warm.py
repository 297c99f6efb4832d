"""Warming an edge's cache with the first segments of a likely next title.

The home page carries prefetch hints (signed URLs of the first segments at the
starting rendition). Fetching them once from the API's side puts those segments
into the chosen edge's cache before the viewer presses Play, so the first request
the player makes is a cache hit. Warm-ups run on a small thread pool, off the
request path, at most once per edge and path per ``remember_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)


class EdgeWarmer:
    """Fetch-and-discard of signed URLs at their edge, deduplicated."""

    def __init__(self, workers: int = 2, timeout_s: float = 5.0, remember_s: float = 600.0) -> None:
        self.timeout_s = timeout_s
        self.remember_s = remember_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-warm")
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout_s)
        self._pending: set[Future[None]] = set()
        self.warmed = 0

    def _claim(self, url: str, now: float) -> bool:
        parts = urlsplit(url)
        key = f"{parts.netloc}{parts.path}"  # the edge caches by path; the signature does not matter
        with self._lock:
            if len(self._seen) > 50_000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.remember_s}
            if now - self._seen.get(key, -self.remember_s) < self.remember_s:
                return False
            self._seen[key] = now
            return True

    def warm(self, urls: list[str]) -> int:
        """Queue the URLs not warmed recently; return how many were queued. Never raises."""
        now = time.monotonic()
        fresh = [u for u in urls if u.startswith(("http://", "https://")) and self._claim(u, now)]
        for url in fresh:
            future = self._pool.submit(self._fetch, url)
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)
        return len(fresh)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _fetch(self, url: str) -> None:
        try:
            with self._client.stream("GET", url) as response:
                for _ in response.iter_bytes(1 << 16):
                    pass
            if response.status_code == 200:
                self.warmed += 1
            else:
                logger.info("edge warm-up of %s answered %s", urlsplit(url).path, response.status_code)
        except httpx.HTTPError as exc:
            logger.info("edge warm-up of %s failed: %s", urlsplit(url).path, type(exc).__name__)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for queued warm-ups (tests and benchmarks)."""
        with self._lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout_s)
