"""Per-unit quality-of-experience outcomes from players' playback reports.

The lake's ``playback_reports`` hold several reports per session (``core.qoe``);
the latest is the session, and a session belongs to the day it started. Units'
QoE metrics are ratios of their sessions' summed totals
(``core.qoe.metrics_from_totals``) over the unit's window, like completion is a
ratio of the unit's plays: a unit with no session in its window has NaN and is
left out of that metric, not counted as perfect.
"""

from __future__ import annotations

import pandas as pd

from core.errors import InvalidInputError
from core.qoe import TOTAL_COLUMNS, latest_reports, metrics_from_totals, session_totals

_NEEDED = ["session_id", "report_seq", "profile_id", "ts", "startup_ms", "played_s", "rebuffer_s", "rebuffer_count"]


def sessions_frame(reports: pd.DataFrame, unit_of_profile: pd.Series | None) -> pd.DataFrame:
    """One row per session: ``unit_id``, ``ts`` (when it started) and its ``TOTAL_COLUMNS``."""
    columns = ["unit_id", "ts", *TOTAL_COLUMNS]
    if reports.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
        return empty.assign(unit_id=pd.Series(dtype=object), ts=pd.Series(dtype="datetime64[ns, UTC]"))
    missing = [c for c in _NEEDED if c not in reports.columns]
    if missing:
        raise InvalidInputError(f"playback reports lack column(s) {missing}; pass the lake table 'playback_reports'")
    reports = reports.assign(ts=pd.to_datetime(reports["ts"], utc=True))
    started = reports.groupby("session_id")["ts"].min()
    sessions = latest_reports(reports)
    frame = session_totals(sessions)
    frame["ts"] = sessions["session_id"].map(started).to_numpy()
    profile = sessions["profile_id"]
    frame["unit_id"] = profile if unit_of_profile is None else profile.map(unit_of_profile)
    return frame.dropna(subset=["unit_id"])[columns]


def qoe_daily_totals(units: pd.DataFrame, sessions: pd.DataFrame, start_col: str, end_col: str) -> pd.DataFrame:
    """Per unit and UTC day: the summed totals of sessions started inside the unit's ``[start, end)``."""
    joined = sessions.merge(units[["unit_id", start_col, end_col]], on="unit_id", how="inner")
    inside = joined[(joined["ts"] >= joined[start_col]) & (joined["ts"] < joined[end_col])]
    return (
        inside.assign(day=inside["ts"].dt.floor("D"))
        .groupby(["unit_id", "day"], sort=False)[TOTAL_COLUMNS]
        .sum()
        .reset_index()
    )


def qoe_from_daily(unit_ids: pd.Series, daily: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """QoE metrics per unit (in the order of ``unit_ids``) from ``qoe_daily_totals`` rows of any days."""
    sums = daily.groupby("unit_id", sort=False)[TOTAL_COLUMNS].sum()
    totals = pd.DataFrame(index=pd.Index(unit_ids, name="unit_id")).join(sums, how="left").fillna(0.0)
    return metrics_from_totals(totals).add_prefix(prefix)


def qoe_in_window(
    units: pd.DataFrame, sessions: pd.DataFrame, start_col: str, end_col: str, prefix: str = ""
) -> pd.DataFrame:
    """QoE metrics of each unit over its own ``[start, end)`` window."""
    return qoe_from_daily(units["unit_id"], qoe_daily_totals(units, sessions, start_col, end_col), prefix)
