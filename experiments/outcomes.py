"""Per-unit outcomes (plays, watch minutes, completion) from watch events.

Watch events are progress reports, so one viewing produces many rows. We
collapse them into *viewings*: one per (profile, title, UTC day), with the
furthest position reached that day (capped at the duration).

* a **play** is a viewing that reached at least ``PLAY_MIN_SECONDS`` (60 s),
  so trailers and mis-clicks do not count;
* **watch minutes** is the sum over viewings of that furthest position / 60;
* a play is **completed** when it reached ``COMPLETION_SHARE`` (90 %) of the
  duration; **completion** is completed plays / plays of the unit, undefined
  (NaN) for a unit without plays, and averaged over units that have plays.

Only events inside a unit's window count: ``[first exposure, end)`` for the
outcome, ``[first exposure - pre_period, first exposure)`` for the CUPED
covariate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.rules import COMPLETED_SHARE

PLAY_MIN_SECONDS = 60
COMPLETION_SHARE = COMPLETED_SHARE
OUTCOME_COLUMNS = ("plays", "watch_minutes", "completion")


def viewings(events: pd.DataFrame) -> pd.DataFrame:
    """Collapse events (unit_id, profile_id, title_id, ts, position_s, duration_s) into viewings.

    Returns:
        one row per viewing: unit_id, day (UTC midnight), seconds, is_play, is_complete.
    """
    columns = ["unit_id", "day", "seconds", "is_play", "is_complete"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    day = events["ts"].dt.floor("D")
    grouped = events.assign(day=day).groupby(["unit_id", "profile_id", "title_id", "day"], sort=False, observed=True)
    frame = grouped.agg(position=("position_s", "max"), duration=("duration_s", "max")).reset_index()
    duration = frame["duration"].to_numpy(np.float64)
    seconds = frame["position"].to_numpy(np.float64)
    seconds = np.where(duration > 0, np.minimum(seconds, duration), seconds)
    is_play = seconds >= PLAY_MIN_SECONDS
    is_complete = is_play & (duration > 0) & (seconds >= COMPLETION_SHARE * duration)
    return pd.DataFrame(
        {
            "unit_id": frame["unit_id"],
            "day": frame["day"],
            "seconds": seconds,
            "is_play": is_play,
            "is_complete": is_complete,
        }
    )


def daily_totals(units: pd.DataFrame, events: pd.DataFrame, start_col: str, end_col: str) -> pd.DataFrame:
    """Per unit and UTC day: plays, watched seconds and completed plays inside each unit's window.

    Args:
        units: one row per unit: ``unit_id`` and the window bounds ``start_col`` / ``end_col`` (UTC).
        events: watch events with a ``unit_id`` column.
        start_col: column of ``units`` with the window start.
        end_col: column of ``units`` with the window end.
    """
    windows = units[["unit_id", start_col, end_col]]
    joined = events.merge(windows, on="unit_id", how="inner")
    inside = joined[(joined["ts"] >= joined[start_col]) & (joined["ts"] < joined[end_col])]
    return (
        viewings(inside)
        .groupby(["unit_id", "day"], sort=False)
        .agg(plays=("is_play", "sum"), seconds=("seconds", "sum"), completed=("is_complete", "sum"))
        .reset_index()
    )


def outcomes_from_daily(unit_ids: pd.Series, daily: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """Plays, watch minutes and completion per unit from ``daily_totals`` rows (any subset of days).

    Returns:
        indexed by ``unit_id`` in the order of ``unit_ids``; units without
        rows get 0 plays, 0 minutes and NaN completion.
    """
    sums = daily.groupby("unit_id", sort=False)[["plays", "seconds", "completed"]].sum()
    result = pd.DataFrame(index=pd.Index(unit_ids, name="unit_id")).join(sums, how="left")
    plays = result["plays"].fillna(0).astype(np.float64)
    completed = result["completed"].fillna(0).astype(np.float64)
    out = pd.DataFrame(index=result.index)
    out[f"{prefix}plays"] = plays
    out[f"{prefix}watch_minutes"] = result["seconds"].fillna(0).astype(np.float64) / 60.0
    out[f"{prefix}completion"] = np.where(plays > 0, completed / plays.where(plays > 0, 1.0), np.nan)
    return out


def outcomes_in_window(
    units: pd.DataFrame, events: pd.DataFrame, start_col: str, end_col: str, prefix: str = ""
) -> pd.DataFrame:
    """Plays, watch minutes and completion of each unit over its own ``[start, end)`` window.

    Args:
        units: one row per unit: ``unit_id`` and the window bounds ``start_col`` / ``end_col`` (UTC).
        events: watch events with a ``unit_id`` column.
        start_col: column of ``units`` with the window start.
        end_col: column of ``units`` with the window end.
        prefix: prepended to the output metric names (``pre_``).

    Returns:
        indexed by ``unit_id`` like ``units``; units without events get 0 plays,
        0 minutes and NaN completion.
    """
    return outcomes_from_daily(units["unit_id"], daily_totals(units, events, start_col, end_col), prefix)
