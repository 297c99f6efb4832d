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

from core.rules import COMPLETED_SHARE
from core.timestamps import utc_series

logger = logging.getLogger(__name__)

#: Reports of one item further apart than this start a new play.
DEFAULT_SESSION_GAP = timedelta(hours=6)

#: A play counts as completed once it reached this share of the item's duration.
COMPLETION_THRESHOLD = COMPLETED_SHARE

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
    profile_codes, profile_names = pd.factorize(events["profile_id"].astype(str), sort=True)
    item_codes, item_names = pd.factorize(events["title_id"].astype(str), sort=True)
    ts_all = utc_series(events["ts"]).dt.as_unit("ns").astype("int64").to_numpy()
    # Integer sort keys: sorting a million object strings costs seconds, codes milliseconds.
    order = np.lexsort((ts_all, item_codes, profile_codes))
    profile_code = profile_codes[order]
    item_code = item_codes[order]
    ts = ts_all[order]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = (profile_code[1:] == profile_code[:-1]) & (item_code[1:] == item_code[:-1])
    gap = np.zeros(len(order), dtype=np.int64)
    gap[1:] = ts[1:] - ts[:-1]
    new_play = ~same | (gap > int(session_gap.total_seconds() * 1e9))
    play_no = np.cumsum(new_play) - 1
    frame = pd.DataFrame(
        {
            "position_s": events["position_s"].to_numpy(dtype=np.float64)[order],
            "duration_s": events["duration_s"].to_numpy(dtype=np.float64)[order],
        }
    )
    furthest = frame["position_s"].groupby(play_no).cummax().to_numpy()
    previous = np.where(new_play, 0.0, np.concatenate([[0.0], furthest[:-1]]))
    duration = frame["duration_s"].to_numpy()
    done = (duration > 0) & (furthest >= COMPLETION_THRESHOLD * duration)
    was_done = np.zeros(len(frame), dtype=bool)
    was_done[1:] = done[:-1]
    was_done &= ~new_play
    # Final order: by profile, then time (ties keep the item order above).
    final = np.lexsort((ts, profile_code))
    item_ids = np.asarray(item_names, dtype=object)[item_code[final]]
    series = _series_of(episodes)
    if series:
        catalog = pd.Series(item_names).map(series).fillna(pd.Series(item_names)).to_numpy(dtype=object)
        title_ids = catalog[item_code[final]]
    else:
        title_ids = item_ids
    steps = pd.DataFrame(
        {
            "profile_id": np.asarray(profile_names, dtype=object)[profile_code[final]],
            "title_id": title_ids,
            "item_id": item_ids,
            "ts": pd.to_datetime(ts[final], unit="ns", utc=True),
            "play": new_play[final].astype(np.int64),
            "minutes": ((furthest - previous) / 60.0)[final],
            "completed": (done & ~was_done)[final].astype(np.int64),
        }
    )
    logger.debug("plays: %d events → %d plays", len(events), int(new_play.sum()))
    return steps


def _series_of(episodes: pd.DataFrame | None) -> dict[str, str]:
    if episodes is None or episodes.empty:
        return {}
    return dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
