"""The popularity refresh as a consumer of the event stream (``MARQUEE_EVENT_BUS`` set).

Popularity and trending are a table held in memory by every API process
(``services.popularity``), so every process must see every watch event: a
consumer shared by all of them would hand each event to one process only. Each
process therefore reads through a durable consumer named after itself, starting
at new messages (its start-up refresh read the lake and the database), which
JetStream deletes after the process has been gone for ``inactive_threshold_s``.
A batch only expires the table (the next page read recomputes it, at most once
per ``min_age_s``); the recomputation is idempotent, so an ack is safe at once.
"""

from __future__ import annotations

import os
import re
import socket

from catalog_api.services.popularity import PopularityService
from core.bus import ConsumerSpec, Delivery, EventKind

#: The youngest table a batch of new events may expire.
MIN_AGE_S = 10.0


def popularity_spec() -> ConsumerSpec:
    """This process's popularity consumer (durable name ``popularity-<host>-<pid>``)."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return ConsumerSpec(
        name=f"popularity-{host}-{os.getpid()}",
        kinds=(EventKind.WATCH,),
        batch=1000,
        deliver_new=True,
        inactive_threshold_s=300.0,
    )


class PopularityRefresh:
    """``Handler`` that expires the process's popularity table when watch events arrive."""

    def __init__(self, popularity: PopularityService, min_age_s: float = MIN_AGE_S) -> None:
        self.popularity, self.min_age_s = popularity, min_age_s

    def __call__(self, deliveries: list[Delivery]) -> dict[int, str]:
        if deliveries:
            self.popularity.expire(self.min_age_s)
        return {}
