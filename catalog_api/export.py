"""Export the API's watch events to the lake, once each (the loop closes here).

The database row is the durable record; this copies rows above a high-water
mark (``export_state``) into the lake's ``watch_events`` table with one append
and then advances the mark. The lake write happens before the mark moves, so a
crash in between re-exports that batch rather than losing it; readers that
need exactly-once keep the latest row per ``event_id``.
"""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_api.db.tables import ExportStateRow, WatchEventRow
from core.lake import Lake

logger = logging.getLogger(__name__)

EXPORT_NAME = "watch_events_to_lake"
_COLUMNS = ["event_id", "profile_id", "title_id", "ts", "position_s", "duration_s", "device", "country"]


def export_events_to_lake(session: Session, lake: Lake, batch_size: int = 50_000) -> int:
    """Append events not exported yet to the lake; returns how many were exported.

    Commits the new high-water mark in the caller's session.
    """
    state = session.get(ExportStateRow, EXPORT_NAME, with_for_update=True)
    if state is None:
        state = ExportStateRow(name=EXPORT_NAME, high_water=0)
        session.add(state)
        session.flush()
    exported = 0
    while True:
        rows = session.execute(
            select(WatchEventRow.seq, *[getattr(WatchEventRow, c) for c in _COLUMNS])
            .where(WatchEventRow.seq > state.high_water)
            .order_by(WatchEventRow.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        frame = pd.DataFrame(rows, columns=["seq", *_COLUMNS])
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.floor("ms")  # the lake stores milliseconds
        lake.write("watch_events", frame[_COLUMNS], mode="append")
        state.high_water = int(frame["seq"].max())
        session.commit()
        exported += len(frame)
    logger.info("exported %d watch events to the lake", exported)
    return exported
