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


def session_metrics(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per-session QoE metrics (columns of ``QOE_METRICS``) from one row per session.

    Rates per hour use the played time; a session that never played counts
    only towards ``startup_ms`` (missing: it never started) and ``fatal_error_rate``.
    """
    played = sessions["played_s"].astype(float)
    stalled = sessions["rebuffer_s"].astype(float)
    hours = played / 3600.0
    total = played + stalled
    out = pd.DataFrame(index=sessions.index)
    out["rebuffer_ratio"] = (stalled / total).where(total > 0)
    out["rebuffers_per_hour"] = (sessions["rebuffer_count"].astype(float) / hours).where(hours > 0)
    out["startup_ms"] = pd.to_numeric(sessions["startup_ms"], errors="coerce")
    out["bitrate_switches_per_hour"] = (sessions["bitrate_switches"].astype(float) / hours).where(hours > 0)
    out["fatal_error_rate"] = sessions["fatal_error"].notna().astype(float)
    out["avg_bitrate_kbps"] = sessions["avg_bitrate_kbps"].astype(float).where(played > 0)
    return out
