"""The online-feature push as a consumer of the event stream (``MARQUEE_EVENT_BUS`` set).

Without the bus, ``OnlinePushLoop`` reads the API database's event feed above a
mark kept in memory. With it, the durable ``online-push`` consumer reads the
stream's watch events and pushes each batch with ``push_watch_events``; the push
recomputes the touched profiles' and titles' features from their whole history,
so pushing a redelivered batch again writes the same rows (idempotent), and the
ack follows the push.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from core.bus import ConsumerSpec, Delivery, EventKind, decode
from core.lake import Lake
from features.push import push_watch_events

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

#: The online push's durable consumer: watch events only.
ONLINE_PUSH = ConsumerSpec(name="online-push", kinds=(EventKind.WATCH,), batch=500)


class OnlinePush:
    """``Handler`` of the ``online-push`` consumer.

    A batch whose push raises a value error (a message the feature schema refuses)
    is raised again so the runner retries it message by message; alone, the
    message is reported as poison and quarantined. Other errors (the online store
    is down) are raised and the batch is retried later.
    """

    def __init__(self, store: FeatureStore, lake: Lake) -> None:
        self.store, self.lake = store, lake
        self.pushed = 0

    def __call__(self, deliveries: list[Delivery]) -> dict[int, str]:
        try:
            records = [decode(d.data) for d in deliveries]
            frame = pd.DataFrame(records)
            frame["ts"] = pd.to_datetime([datetime.fromisoformat(str(r["ts"])) for r in records], utc=True)
            report = push_watch_events(self.store, frame, self.lake)
        except (ValueError, KeyError, TypeError, OverflowError) as error:
            if len(deliveries) == 1:
                return {0: f"cannot be pushed to the online store: {type(error).__name__}: {error}"}
            raise
        self.pushed += report.events
        return {}
