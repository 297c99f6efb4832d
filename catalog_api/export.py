"""Export the API's watch events (and players' QoE reports) to the lake, once each (the loop closes here).

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
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_api.db.tables import ExportStateRow, PlaybackReportRow, QuarantinedEventRow, WatchEventRow
from catalog_api.quarantine import split_poisoned
from core.lake import Lake
from core.qoe import REPORT_COLUMNS
from core.timestamps import utc_series

logger = logging.getLogger(__name__)

EXPORT_NAME = "watch_events_to_lake"
EVENT_COLUMNS = ["event_id", "profile_id", "title_id", "ts", "position_s", "duration_s", "device", "country"]


PLAYBACK_EXPORT_NAME = "playback_reports_to_lake"


def export_events_to_lake(session: Session, lake: Lake, batch_size: int = 50_000) -> int:
    """Append events not exported yet to the lake; returns how many were exported.

    Commits the new high-water mark in the caller's session.
    """
    exported = _export(
        session, lake, WatchEventRow, EVENT_COLUMNS, EXPORT_NAME, "watch_events", batch_size, quarantine=True
    )
    logger.info("exported %d watch events to the lake", exported)
    return exported


def events_exported_through(session: Session) -> int:
    """The highest ``watch_events.seq`` the lake is known to hold (0 before the first export).

    Every event at or below it is in the lake's ``watch_events`` (or quarantined), so a reader
    that combines the lake with the database needs only the rows above it from the database.
    """
    state = session.get(ExportStateRow, EXPORT_NAME)
    return int(state.high_water) if state is not None else 0


def export_playback_reports_to_lake(session: Session, lake: Lake, batch_size: int = 50_000) -> int:
    """Append QoE reports not exported yet to the lake's ``playback_reports``; returns how many.

    The lake keeps every report (with ``seq`` and ``ts``); ``core.qoe.latest_reports``
    turns them into one row per session.
    """
    columns = ["seq", "ts", *REPORT_COLUMNS]
    exported = _export(session, lake, PlaybackReportRow, columns, PLAYBACK_EXPORT_NAME, "playback_reports", batch_size)
    logger.info("exported %d playback reports to the lake", exported)
    return exported


def _export(
    session: Session,
    lake: Lake,
    row: type[WatchEventRow] | type[PlaybackReportRow],
    columns: list[str],
    name: str,
    table: str,
    batch_size: int,
    *,
    quarantine: bool = False,
) -> int:
    """Rows of ``row`` above the ``name`` high-water mark, appended to the lake's ``table`` in batches.

    With ``quarantine``, rows ``split_poisoned`` refuses are set aside (the mark still moves past them).
    """
    state = session.get(ExportStateRow, name, with_for_update=True)
    if state is None:
        create_mark(session, name)
        state = session.get(ExportStateRow, name, with_for_update=True)
        if state is None:  # committed above, by this exporter or by another one
            raise RuntimeError(f"the export mark {name!r} vanished right after it was created")
    selected = ["seq", *[c for c in columns if c != "seq"]]
    # Export what is stored now, not what arrives meanwhile: under steady traffic each batch's
    # write let new rows in, so one export chased the tail in commits of a few rows every few
    # seconds (538 commits in a 30-minute soak instead of 30), and every lake reader slowed with them.
    ceiling = session.scalar(select(func.max(row.seq))) or 0
    exported = 0
    while True:
        rows = session.execute(
            select(*[getattr(row, c) for c in selected])
            .where(row.seq > state.high_water, row.seq <= ceiling)
            .order_by(row.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        frame = pd.DataFrame(rows, columns=selected)
        high_water = int(frame["seq"].max())
        if quarantine:
            frame = _set_aside_poisoned(session, frame)
        if not frame.empty:
            frame = frame.copy()
            frame["ts"] = utc_series(frame["ts"]).dt.floor("ms")  # the lake stores milliseconds
            lake.write(table, frame[columns], mode="append")
        state.high_water = high_water
        session.commit()
        exported += len(frame)
    return exported


def create_mark(session: Session, name: str) -> None:
    """The export's high-water mark at 0, committed in its own short transaction.

    Inserted within the export's transaction, the new row held SQLite's one write lock
    through the first batch's lake write, so every event posted meanwhile waited on it.
    Two exporters starting at once (two API replicas) both insert: the second one's
    insert fails on the primary key, and it goes on with the row the first one made.
    """
    session.add(ExportStateRow(name=name, high_water=0))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()


def _set_aside_poisoned(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the events ``split_poisoned`` refuses; those are recorded in ``quarantined_events``."""
    good, bad = split_poisoned(frame, "lake export")
    now = datetime.now(UTC)
    for position, reason in bad:
        seq = int(frame["seq"].iloc[position])
        if session.get(QuarantinedEventRow, seq) is None:
            event_id = str(frame["event_id"].iloc[position]).encode("utf-8", "backslashreplace").decode()
            session.add(
                QuarantinedEventRow(seq=seq, event_id=event_id.replace("\x00", ""), reason=reason, quarantined_at=now)
            )
    return good
