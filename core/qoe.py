"""Quality-of-experience rules shared by the API, the lake export and experiment analysis.

A player reports each playback session several times (after the first frame,
every 30 s, at the end); every report carries the session's totals so far. The
latest report of a session is the session: ``latest_reports`` is that rule,
defined once. The ratios turn a session's totals into the metrics experiments
compare (``QOE_METRICS``), each with the direction that counts as worse.
"""

from __future__ import annotations

import pandas as pd

#: Columns of a playback report, in the lake's ``playback_reports`` table (plus ``seq``, ``ts``).
REPORT_COLUMNS = [
    "session_id",
    "report_seq",
    "profile_id",
    "title_id",
    "format",
    "device",
    "edge",
    "country",
    "startup_ms",
    "played_s",
    "rebuffer_count",
    "rebuffer_s",
    "bitrate_switches",
    "avg_bitrate_kbps",
    "fatal_error",
    "ended",
]

#: QoE metrics an experiment may name, and whether a HIGHER value is worse for the viewer.
QOE_METRICS: dict[str, bool] = {
    "rebuffer_ratio": True,
    "rebuffers_per_hour": True,
    "startup_ms": True,
    "bitrate_switches_per_hour": True,
    "fatal_error_rate": True,
    "avg_bitrate_kbps": False,
}


def latest_reports(reports: pd.DataFrame) -> pd.DataFrame:
    """One row per session: its report with the highest ``report_seq`` (ties: the last row)."""
    if reports.empty:
        return reports
    ordered = reports.reset_index(drop=True).sort_values(["session_id", "report_seq"], kind="stable")
    return ordered.drop_duplicates("session_id", keep="last").reset_index(drop=True)


def rebuffer_ratio(rebuffer_s: float, played_s: float) -> float:
    """Share of the viewing time spent stalled: stalls / (playing + stalls); 0 for an empty session."""
    total = played_s + rebuffer_s
    return rebuffer_s / total if total > 0 else 0.0


#: Additive totals a set of sessions is summarised by (per session, per unit and day, per unit).
TOTAL_COLUMNS = [
    "sessions",
    "started",
    "startup_ms_sum",
    "played_s",
    "rebuffer_s",
    "rebuffer_count",
    "bitrate_switches",
    "fatal",
    "bitrate_kbps_s",
]


def session_totals(sessions: pd.DataFrame) -> pd.DataFrame:
    """``TOTAL_COLUMNS`` of each session (one row per session, as ``latest_reports`` gives)."""
    startup = pd.to_numeric(sessions["startup_ms"], errors="coerce")
    played = sessions["played_s"].astype(float)
    return pd.DataFrame(
        {
            "sessions": 1.0,
            "started": startup.notna().astype(float),
            "startup_ms_sum": startup.fillna(0.0),
            "played_s": played,
            "rebuffer_s": sessions["rebuffer_s"].astype(float),
            "rebuffer_count": sessions["rebuffer_count"].astype(float),
            "bitrate_switches": sessions["bitrate_switches"].astype(float),
            "fatal": sessions["fatal_error"].notna().astype(float),
            "bitrate_kbps_s": sessions["avg_bitrate_kbps"].astype(float) * played,
        },
        index=sessions.index,
    )


def metrics_from_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """The ``QOE_METRICS`` of each row of summed ``TOTAL_COLUMNS`` (a session, or a unit's sessions).

    Ratios of sums, so a long session weighs more than a short one: ``rebuffer_ratio``
    is stalled / (played + stalled) time (``rebuffer_ratio`` above), rates are per
    played hour, ``startup_ms`` is the mean over sessions that showed a first frame,
    ``avg_bitrate_kbps`` is weighted by played time. Undefined (NaN) where the
    denominator is zero: a unit without sessions has no QoE, not a perfect one.
    """
    played = totals["played_s"]
    stalled = totals["rebuffer_s"]
    hours = played / 3600.0
    watched = played + stalled
    out = pd.DataFrame(index=totals.index)
    out["rebuffer_ratio"] = (stalled / watched.where(watched > 0)).astype(float)
    out["rebuffers_per_hour"] = totals["rebuffer_count"] / hours.where(hours > 0)
    out["startup_ms"] = totals["startup_ms_sum"] / totals["started"].where(totals["started"] > 0)
    out["bitrate_switches_per_hour"] = totals["bitrate_switches"] / hours.where(hours > 0)
    out["fatal_error_rate"] = totals["fatal"] / totals["sessions"].where(totals["sessions"] > 0)
    out["avg_bitrate_kbps"] = totals["bitrate_kbps_s"] / played.where(played > 0)
    return out[list(QOE_METRICS)]
