"""CDN edge choice by region and health.

Each edge serves some regions. The request's country picks a healthy edge
serving it; failing that any healthy edge; failing that the first edge (a
stale manifest beats no manifest). An edge is marked down after
``failure_threshold`` reported failures and up again on a success.
"""

from __future__ import annotations

import threading

from catalog_api.options import CdnEdge


class EdgeDirectory:
    """The configured edges and their health."""

    def __init__(self, edges: tuple[CdnEdge, ...], failure_threshold: int = 3) -> None:
        if not edges:
            raise ValueError("at least one CDN edge must be configured")
        self.edges = edges
        self.failure_threshold = failure_threshold
        self._failures = {edge.name: 0 for edge in edges}
        self._lock = threading.Lock()

    def healthy(self, name: str) -> bool:
        """Whether the edge is currently considered up."""
        with self._lock:
            return self._failures[name] < self.failure_threshold

    def report_failure(self, name: str) -> None:
        """Count a failure (from health checks or client reports)."""
        with self._lock:
            self._failures[name] += 1

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
        healthy = [edge for edge in self.edges if self.healthy(edge.name)]
        for edge in healthy:
            if country in edge.regions:
                return edge
        return healthy[0] if healthy else self.edges[0]

    def status(self) -> list[dict[str, object]]:
        """Name, regions and health of every edge (for the health endpoint)."""
        return [{"name": e.name, "regions": list(e.regions), "healthy": self.healthy(e.name)} for e in self.edges]
