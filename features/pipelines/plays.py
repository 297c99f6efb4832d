"""Watch events → plays: the unit every feature counts.

A watch event is a progress report (the app sends several per viewing) or a
rating (MovieLens sends one). Counting reports would make a profile that pauses
often look more active than one that does not, so consecutive reports of the
same item by the same profile, less than ``session_gap`` apart, collapse into
one *play*. A play is stamped with the time of its **last** report: only then is
its final position known, so a feature that counts a play at time T uses no
information from after T.

Episodes are mapped to their series (``episodes.series_id``) so title features
are per catalog title; the episode id stays in ``item_id``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Reports of one item further apart than this start a new play.
DEFAULT_SESSION_GAP = timedelta(hours=6)

#: A play counts as completed once it reached this share of the item's duration.
COMPLETION_THRESHOLD = 0.9

#: Columns of the frame :func:`plays_from_events` returns.
PLAY_COLUMNS = ("profile_id", "title_id", "item_id", "ts", "minutes", "completed")


def plays_from_events(
    events: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    session_gap: timedelta = DEFAULT_SESSION_GAP,
) -> pd.DataFrame:
    """Collapse watch events into plays.

    Args:
        events: lake ``watch_events`` rows (``profile_id``, ``title_id``, ``ts``,
            ``position_s``, ``duration_s``); ``title_id`` may be an episode id.
        episodes: lake ``episodes`` rows (``episode_id``, ``series_id``), or None.
        session_gap: reports of one item further apart than this are separate plays.

    Returns:
        One row per play, sorted by (``profile_id``, ``ts``), with columns
        ``profile_id`` (str), ``title_id`` (str, the catalog title: series for an
        episode), ``item_id`` (str, what was played), ``ts`` (datetime64[ns, UTC],
        the play's last report), ``minutes`` (float64, furthest position / 60) and
        ``completed`` (bool, furthest position ≥ 90% of the duration).
    """
    if events.empty:
        return pd.DataFrame(
            {
                "profile_id": pd.Series(dtype=object),
                "title_id": pd.Series(dtype=object),
                "item_id": pd.Series(dtype=object),
                "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                "minutes": pd.Series(dtype="float64"),
                "completed": pd.Series(dtype=bool),
            }
        )
    frame = pd.DataFrame(
        {
            "profile_id": events["profile_id"].astype(str).to_numpy(),
            "item_id": events["title_id"].astype(str).to_numpy(),
            "ts": pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns").astype("int64").to_numpy(),
            "position_s": events["position_s"].to_numpy(dtype=np.float64),
            "duration_s": events["duration_s"].to_numpy(dtype=np.float64),
        }
    )
    frame = frame.sort_values(["profile_id", "item_id", "ts"], kind="stable", ignore_index=True)
    profile = frame["profile_id"].to_numpy()
    item = frame["item_id"].to_numpy()
    ts = frame["ts"].to_numpy()
    same = np.zeros(len(frame), dtype=bool)
    same[1:] = (profile[1:] == profile[:-1]) & (item[1:] == item[:-1])
    gap = np.zeros(len(frame), dtype=np.int64)
    gap[1:] = ts[1:] - ts[:-1]
    new_play = ~same | (gap > int(session_gap.total_seconds() * 1e9))
    play_no = np.cumsum(new_play) - 1
    grouped = frame.groupby(play_no, sort=False)
    plays = pd.DataFrame(
        {
            "profile_id": profile[new_play],
            "item_id": item[new_play],
            "ts": pd.to_datetime(grouped["ts"].max().to_numpy(), unit="ns", utc=True),
            "position_s": grouped["position_s"].max().to_numpy(),
            "duration_s": grouped["duration_s"].max().to_numpy(),
        }
    )
    series = _series_of(episodes)
    if series:
        plays["title_id"] = plays["item_id"].map(series).fillna(plays["item_id"])
    else:
        plays["title_id"] = plays["item_id"]
    duration = plays["duration_s"].to_numpy()
    position = plays["position_s"].to_numpy()
    plays["minutes"] = position / 60.0
    with np.errstate(invalid="ignore", divide="ignore"):
        plays["completed"] = (duration > 0) & (position >= COMPLETION_THRESHOLD * duration)
    plays = plays.sort_values(["profile_id", "ts"], kind="stable", ignore_index=True)
    logger.debug("plays: %d events → %d plays", len(events), len(plays))
    return plays.loc[:, list(PLAY_COLUMNS)]


def _series_of(episodes: pd.DataFrame | None) -> dict[str, str]:
    if episodes is None or episodes.empty:
        return {}
    return dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
