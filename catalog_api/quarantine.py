"""Stored watch events that must not reach the lake or the rankings, and why.

Input validation (``schemas.common``) keeps new events sane; rows stored before
it (or by a bug) may still hold a timestamp pandas cannot represent (year
9999), one far in the future or before any client existed, or text with NUL.
Such a row used to stop every export (``OverflowError``, the high-water mark
stuck) and the popularity refresh. The export and the refresh both split
their input with ``split_poisoned``: good rows go on, bad rows are logged with
their reason (and the export records them in ``quarantined_events``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd

from catalog_api.schemas.common import INT32_MAX, MAX_CLOCK_SKEW, TIME_FLOOR, text_problem
from core.timestamps import utc_series

logger = logging.getLogger(__name__)

#: Text columns of a watch event that are checked for NUL and unpaired surrogates.
TEXT_COLUMNS = ("event_id", "profile_id", "title_id", "device", "country")


def row_problem(row: dict[str, object], now: datetime) -> str | None:
    """Why one stored event must be set aside, or None when it is sound."""
    ts = row.get("ts")
    if not isinstance(ts, datetime):
        return f"ts is not a timestamp: {ts!r}"
    try:
        utc = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
        pd.Timestamp(utc)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return f"ts {ts.isoformat()} is outside the representable range"
    if utc < TIME_FLOOR:
        return f"ts {utc.isoformat()} is before {TIME_FLOOR.isoformat()}"
    if utc > now + MAX_CLOCK_SKEW:
        return f"ts {utc.isoformat()} is in the future"
    for name in ("position_s", "duration_s"):
        value = row.get(name)
        if value is not None and not (0 <= int(str(value)) <= INT32_MAX):
            return f"{name} {value} is out of range"
    for name in TEXT_COLUMNS:
        value = row.get(name)
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            return f"{name} {problem}"
    return None


def split_poisoned(
    frame: pd.DataFrame, what: str, now: datetime | None = None
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """``frame`` without the rows that ``row_problem`` refuses, and (row position, reason) of those.

    A fast path checks whole columns at once; rows are looked at one by one only when a
    column holds something suspicious, so a clean batch costs one vectorised pass.
    """
    if frame.empty:
        return frame, []
    now = now or datetime.now(UTC)
    if _looks_clean(frame, now):
        return frame, []
    bad: list[tuple[int, str]] = []
    for position, row in enumerate(frame.to_dict("records")):
        problem = row_problem(row, now)
        if problem:
            bad.append((position, problem))
            logger.error("%s: quarantined event %r: %s", what, row.get("event_id", "?"), problem)
    refused = {p for p, _ in bad}
    keep = [i for i in range(len(frame)) if i not in refused]
    return frame.iloc[keep].reset_index(drop=True), bad


def _looks_clean(frame: pd.DataFrame, now: datetime) -> bool:
    try:
        ts = utc_series(frame["ts"])
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return False
    if ts.isna().any() or ts.min() < TIME_FLOOR or ts.max() > now + MAX_CLOCK_SKEW:
        return False
    for name in ("position_s", "duration_s"):
        if name in frame and ((frame[name] < 0) | (frame[name] > INT32_MAX)).any():
            return False
    for name in TEXT_COLUMNS:
        if name in frame and frame[name].astype(str).str.contains("\x00|[\ud800-\udfff]", regex=True).any():
            return False
    return True
