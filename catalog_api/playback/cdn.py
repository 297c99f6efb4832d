"""CDN edge choice by region and by real health.

Each edge serves some regions. The request's country picks a healthy edge
serving it; failing that any healthy edge; failing that the first edge (a
stale manifest beats no manifest). An edge is marked down after
``failure_threshold`` failures and up again on a success.

With ``check_interval_s`` set, a daemon thread asks every edge's ``/healthz``
that often (active checks), so an edge that stops answering is out of rotation
within ``failure_threshold × check_interval_s`` plus one timeout, and the
health endpoint reports what the checks saw. Edges without active checks (the
built-in placeholders, when no edges run) are reported as unchecked, not healthy.
With ``edges_file`` the thread also reloads the published edges when the file
changes (``marquee serve edge`` started after the API).
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import httpx

from catalog_api.options import CdnEdge


class EdgeDirectory:
    """The configured edges and their health."""

    def __init__(
        self,
        edges: tuple[CdnEdge, ...],
        failure_threshold: int = 3,
        check_interval_s: float = 0.0,
        check_timeout_s: float = 0.5,
        edges_file: Path | None = None,
        load_edges: Callable[[Path], tuple[CdnEdge, ...]] | None = None,
    ) -> None:
        if not edges:
            raise ValueError("at least one CDN edge must be configured")
        self.edges = edges
        self.failure_threshold = failure_threshold
        self.check_interval_s = check_interval_s
        self.check_timeout_s = check_timeout_s
        self.edges_file = edges_file
        self._load_edges = load_edges
        self._edges_stamp = self._stamp()
        self._failures = {edge.name: 0 for edge in edges}
        self._checked_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._checker: threading.Thread | None = None

    def _stamp(self) -> float:
        try:
            return self.edges_file.stat().st_mtime if self.edges_file else 0.0
        except OSError:
            return 0.0

    def healthy(self, name: str) -> bool:
        """Whether the edge is currently considered up."""
        with self._lock:
            return self._failures.get(name, self.failure_threshold) < self.failure_threshold

    def report_failure(self, name: str) -> None:
        """Count a failure (from health checks or client reports)."""
        with self._lock:
            self._failures[name] = self._failures.get(name, 0) + 1

    def report_success(self, name: str) -> None:
        """A success brings the edge back up."""
        with self._lock:
            self._failures[name] = 0

    def mark_down(self, name: str) -> None:
        """Take an edge out of rotation now."""
        with self._lock:
            self._failures[name] = self.failure_threshold

    def choose(self, country: str) -> CdnEdge:
        """The edge a client in ``country`` should use."""
        self.start_checks()
        edges = self.edges
        healthy = [edge for edge in edges if self.healthy(edge.name)]
        for edge in healthy:
            if country in edge.regions:
                return edge
        return healthy[0] if healthy else edges[0]

    def status(self) -> list[dict[str, object]]:
        """Name, URL, regions and health of every edge (for ``/readyz``), as the active checks saw it."""
        self.start_checks()
        now = time.time()
        out: list[dict[str, object]] = []
        for e in self.edges:
            entry: dict[str, object] = {"name": e.name, "url": e.base_url, "regions": list(e.regions)}
            if self.check_interval_s > 0:
                checked = self._checked_at.get(e.name)
                entry["healthy"] = self.healthy(e.name) and checked is not None
                entry["checked_s_ago"] = None if checked is None else round(now - checked, 1)
            else:
                entry["healthy"] = None  # nobody checks: do not claim it is up
                entry["checked"] = False
            out.append(entry)
        return out

    def check_now(self, client: httpx.Client | None = None) -> None:
        """One round of active checks: ``GET <edge>/healthz`` on each edge."""
        self._reload_if_changed()
        own = client is None
        client = client or httpx.Client(timeout=self.check_timeout_s)
        try:
            for edge in self.edges:
                try:
                    ok = client.get(f"{edge.base_url}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self._checked_at[edge.name] = time.time()
                if ok:
                    self.report_success(edge.name)
                else:
                    self.report_failure(edge.name)
        finally:
            if own:
                client.close()

    def _reload_if_changed(self) -> None:
        if self.edges_file is None or self._load_edges is None:
            return
        stamp = self._stamp()
        if stamp == self._edges_stamp:
            return
        self._edges_stamp = stamp
        with contextlib.suppress(ValueError):
            loaded = self._load_edges(self.edges_file)
            if loaded:
                with self._lock:
                    self._failures = {e.name: self._failures.get(e.name, 0) for e in loaded}
                self.edges = loaded

    def start_checks(self) -> None:
        """Start the active checks (once; no-op without ``check_interval_s``), after one round now."""
        if self.check_interval_s <= 0 or self._checker is not None:
            return
        with self._lock:
            if self._checker is not None:
                return
            self._checker = threading.Thread(
                target=_check_loop, args=(weakref.ref(self), self.check_interval_s), name="edge-health", daemon=True
            )
            self._checker.start()
        self.check_now()  # the first answer is real, not a default


def _check_loop(directory: weakref.ref[EdgeDirectory], interval_s: float) -> None:
    """Check every ``interval_s`` until the directory is gone (an app dropped by a test)."""
    with httpx.Client(timeout=min(interval_s, 0.5)) as client:
        while True:
            time.sleep(interval_s)
            current = directory()
            if current is None:
                return
            current.check_now(client)
            del current
