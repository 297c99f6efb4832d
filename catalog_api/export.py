"""Export the API's watch events to the lake, once each (the loop closes here).

The database row is the durable record; this copies rows above a high-water
mark (``export_state``) into the lake's ``watch_events`` table with one append
and then advances the mark. The lake write happens before the mark moves, so a
crash in between re-exports that batch rather than losing it; readers that
need exactly-once keep the latest row per ``event_id``.

A row the lake cannot hold (``catalog_api.quarantine``) is recorded in
``quarantined_events`` with its reason, in the same transaction that moves the
mark, and skipped: it can never hold the export back again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_api.db.tables import ExportStateRow, QuarantinedEventRow, WatchEventRow
from catalog_api.quarantine import split_poisoned
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
        high_water = int(frame["seq"].max())
        good, bad = split_poisoned(frame, "lake export")
        now = datetime.now(UTC)
        for position, reason in bad:
            seq = int(frame["seq"].iloc[position])
            if session.get(QuarantinedEventRow, seq) is None:
                event_id = str(frame["event_id"].iloc[position]).encode("utf-8", "backslashreplace").decode()
                session.add(
                    QuarantinedEventRow(
                        seq=seq, event_id=event_id.replace("\x00", ""), reason=reason, quarantined_at=now
                    )
                )
        if not good.empty:
            good = good.copy()
            good["ts"] = pd.to_datetime(good["ts"], utc=True).dt.floor("ms")  # the lake stores milliseconds
            lake.write("watch_events", good[_COLUMNS], mode="append")
        state.high_water = high_water
        session.commit()
        exported += len(good)
    logger.info("exported %d watch events to the lake", exported)
    return exported
