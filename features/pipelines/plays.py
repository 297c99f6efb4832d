"""Watch events → play steps: what each report adds to a profile's history.

A watch event is a progress report (the app sends several per viewing) or a
rating (MovieLens sends one). Counting reports would make a profile that pauses
often look more active, so consecutive reports of the same item by the same
profile, less than ``session_gap`` apart, belong to one *play*.

Every report becomes one *step* that carries only what became known at that
report: the play's start (``play`` = 1 on its first report), the minutes its
furthest position advanced, and ``completed`` = 1 on the report where the play
first reached 90%. A feature at time T sums the steps strictly before T, so it
equals the same feature computed from the events before T alone — a viewing that
straddles T counts as far as it had got, and nothing after T changes it.

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
PLAY_COLUMNS = ("profile_id", "title_id", "item_id", "ts", "play", "minutes", "completed")


def plays_from_events(
    events: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    session_gap: timedelta = DEFAULT_SESSION_GAP,
) -> pd.DataFrame:
    """Turn watch events into play steps (one per report).

    Args:
        events: lake ``watch_events`` rows (``profile_id``, ``title_id``, ``ts``,
            ``position_s``, ``duration_s``); ``title_id`` may be an episode id.
        episodes: lake ``episodes`` rows (``episode_id``, ``series_id``), or None.
        session_gap: reports of one item further apart than this are separate plays.

    Returns:
        One row per report, sorted by (``profile_id``, ``ts``): ``profile_id`` (str),
        ``title_id`` (str, the catalog title: the series of an episode), ``item_id``
        (str, what was played), ``ts`` (datetime64[ns, UTC]), ``play`` (int64, 1 on a
        play's first report), ``minutes`` (float64, how far the play's furthest
        position advanced, in minutes) and ``completed`` (int64, 1 on the report that
        first reached 90% of the duration).
    """
    if events.empty:
        return pd.DataFrame(
            {
                "profile_id": pd.Series(dtype=object),
                "title_id": pd.Series(dtype=object),
                "item_id": pd.Series(dtype=object),
                "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                "play": pd.Series(dtype="int64"),
                "minutes": pd.Series(dtype="float64"),
                "completed": pd.Series(dtype="int64"),
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
    furthest = frame["position_s"].groupby(play_no).cummax().to_numpy()
    previous = np.where(new_play, 0.0, np.concatenate([[0.0], furthest[:-1]]))
    duration = frame["duration_s"].to_numpy()
    done = (duration > 0) & (furthest >= COMPLETION_THRESHOLD * duration)
    was_done = np.zeros(len(frame), dtype=bool)
    was_done[1:] = done[:-1]
    was_done &= ~new_play
    steps = pd.DataFrame(
        {
            "profile_id": profile,
            "item_id": item,
            "ts": pd.to_datetime(ts, unit="ns", utc=True),
            "play": new_play.astype(np.int64),
            "minutes": (furthest - previous) / 60.0,
            "completed": (done & ~was_done).astype(np.int64),
        }
    )
    series = _series_of(episodes)
    if series:
        steps["title_id"] = steps["item_id"].map(series).fillna(steps["item_id"])
    else:
        steps["title_id"] = steps["item_id"]
    steps = steps.sort_values(["profile_id", "ts"], kind="stable", ignore_index=True)
    logger.debug("plays: %d events → %d plays", len(events), int(new_play.sum()))
    return steps.loc[:, list(PLAY_COLUMNS)]


def _series_of(episodes: pd.DataFrame | None) -> dict[str, str]:
    if episodes is None or episodes.empty:
        return {}
    return dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
