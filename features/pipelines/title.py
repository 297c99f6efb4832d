"""Title features: popularity as of T, and catalog metadata for the rankers.

Pure pandas/numpy (no Feast). ``title_id`` is the catalog title: plays of an
episode count for its series (see :mod:`features.pipelines.plays`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.pipelines.windows import DAY_S, WINDOWS_DAYS, Timeline, from_seconds, prefix_sum, to_seconds

#: Columns of the ``title_popularity`` feature table (besides ``title_id`` and ``event_timestamp``).
TITLE_POPULARITY_COLUMNS = (
    *(f"title_plays_{w}d" for w in WINDOWS_DAYS),
    *(f"title_viewers_{w}d" for w in WINDOWS_DAYS),
    "title_plays_total",
    "title_viewers_total",
    "title_completion_rate",
    "title_trend",
    "title_days_since_release",
    "title_days_since_added",
)

#: Columns of the ``title_metadata`` feature table (besides ``title_id`` and ``event_timestamp``).
TITLE_METADATA_COLUMNS = ("genres", "languages", "maturity_level", "release_year", "duration_min", "is_series")

#: Catalog metadata has no history in the lake: its rows are stamped at the epoch so
#: that every point-in-time join finds them.
METADATA_TIMESTAMP = pd.Timestamp("1970-01-01", tz="UTC")


def title_popularity(
    plays: pd.DataFrame,
    titles: pd.DataFrame,
    title_ids: npt.NDArray[np.object_],
    seconds: npt.NDArray[np.int64],
) -> pd.DataFrame:
    """Popularity of ``title_ids[i]`` from plays strictly before ``seconds[i]``.

    Args:
        plays: from :func:`features.pipelines.plays.plays_from_events`.
        titles: lake ``titles`` rows (``title_id``, ``release_year``, ``date_added``).
        title_ids: shape (m,) str, the catalog title of each snapshot.
        seconds: shape (m,) int64, snapshot time T in seconds since the epoch.

    Returns:
        One row per snapshot: ``title_id``, ``event_timestamp`` and
        :data:`TITLE_POPULARITY_COLUMNS` — ``title_plays_{1,7,30}d`` and
        ``title_viewers_{1,7,30}d`` (distinct profiles, int64), lifetime
        ``title_plays_total`` / ``title_viewers_total`` (int64),
        ``title_completion_rate`` (float32), ``title_trend`` (float32: plays of the
        last day over the daily average of the last 7; 1 = steady, 0 when no plays
        in 7 days) and ``title_days_since_release`` / ``title_days_since_added``
        (float32, NaN when the catalog does not say or T is earlier).
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    title_ids = np.asarray(title_ids, dtype=object)
    vocabulary = pd.Index(pd.unique(np.concatenate([plays["title_id"].to_numpy(), title_ids])))
    codes = vocabulary.get_indexer(title_ids).astype(np.int64)
    play_codes = vocabulary.get_indexer(plays["title_id"].to_numpy()).astype(np.int64)
    play_seconds = to_seconds(plays["ts"])
    longest = max(WINDOWS_DAYS) * DAY_S
    span = int(max(play_seconds.max(initial=0), seconds.max(initial=0))) + longest + 1
    line, order = Timeline.build(play_codes, play_seconds, span)
    query = line.query(codes, seconds)
    completed = prefix_sum(plays["completed"].to_numpy(np.float64)[order])
    starts = prefix_sum(plays["play"].to_numpy(np.float64)[order])

    out: dict[str, object] = {"title_id": title_ids, "event_timestamp": from_seconds(seconds)}
    for w in WINDOWS_DAYS:
        out[f"title_plays_{w}d"] = np.rint(query.sum(starts, w * DAY_S)).astype(np.int64)
    viewer_codes = pd.Index(pd.unique(plays["profile_id"].to_numpy())).get_indexer(plays["profile_id"].to_numpy())
    pairs = _ViewerPlays.build(play_codes, viewer_codes, play_seconds)
    for w in WINDOWS_DAYS:
        out[f"title_viewers_{w}d"] = _distinct_viewers(pairs, codes, seconds, w * DAY_S, span)
    total = np.rint(query.sum(starts, None)).astype(np.int64)
    out["title_plays_total"] = total
    out["title_viewers_total"] = _distinct_viewers(pairs, codes, seconds, None, span)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["title_completion_rate"] = (query.sum(completed, None) / total).astype(np.float32)
        plays_1d = np.asarray(out["title_plays_1d"], dtype=np.float64)
        plays_7d = np.asarray(out["title_plays_7d"], dtype=np.float64)
        out["title_trend"] = np.where(plays_7d > 0, plays_1d * 7.0 / plays_7d, 0.0).astype(np.float32)
    release_s, added_s = _catalog_times(titles, title_ids)
    with np.errstate(invalid="ignore"):
        since_release = (seconds - release_s) / DAY_S
        since_added = (seconds - added_s) / DAY_S
    # Before its release (or before it was added) a title has no age: NaN, not a negative one.
    out["title_days_since_release"] = np.where(since_release >= 0, since_release, np.nan).astype(np.float32)
    out["title_days_since_added"] = np.where(since_added >= 0, since_added, np.nan).astype(np.float32)
    return pd.DataFrame(out)


@dataclass(frozen=True)
class _ViewerPlays:
    """Play steps sorted by (title, profile, time), shared by every viewer window."""

    title: npt.NDArray[np.int64]
    t: npt.NDArray[np.int64]
    same_pair: npt.NDArray[np.bool_]

    @classmethod
    def build(
        cls, play_codes: npt.NDArray[np.int64], viewer_codes: npt.NDArray[np.intp], play_seconds: npt.NDArray[np.int64]
    ) -> _ViewerPlays:
        order = np.lexsort((play_seconds, viewer_codes, play_codes))
        title = play_codes[order]
        viewer = viewer_codes[order]
        same_pair = np.zeros(len(order), dtype=bool)
        same_pair[1:] = (title[1:] == title[:-1]) & (viewer[1:] == viewer[:-1])
        return cls(title, play_seconds[order], same_pair)


def _distinct_viewers(
    pairs: _ViewerPlays,
    codes: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64],
    window_s: int | None,
    span: int,
) -> npt.NDArray[np.int64]:
    """Distinct profiles with a play of the title in ``[T - window, T)`` (all before T when None).

    A play at t counts its profile for every T in ``(t, t + window]``. Plays of
    one (title, profile) closer than the window merge into one segment
    ``(first, last + window]``, so a profile is counted once; the count at T is
    then the segments started before T minus those ended before T.
    """
    title, t, same_pair = pairs.title, pairs.t, pairs.same_pair
    if window_s is None:
        starts = ~same_pair
        start_line, _ = Timeline.build(title[starts], t[starts], span)
        return start_line.window_count(codes, seconds, None)
    gap = np.zeros(len(t), dtype=np.int64)
    gap[1:] = t[1:] - t[:-1]
    starts = ~same_pair | (gap > window_s)
    ends = np.zeros(len(t), dtype=bool)
    ends[:-1] = starts[1:]
    if len(t):
        ends[-1] = True
    start_line, _ = Timeline.build(title[starts], t[starts], span)
    end_line, _ = Timeline.build(title[ends], t[ends] + window_s, span)
    started = start_line.window_count(codes, seconds, None)
    # A segment ending at e covers T ≤ e + window, so it is gone only once e + window < T.
    ended = end_line.window_count(codes, seconds, None)
    return (started - ended).astype(np.int64)


def _catalog_times(
    titles: pd.DataFrame, title_ids: npt.NDArray[np.object_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Release (1 January of the release year) and date added, in seconds, per title; NaN when unknown."""
    if titles.empty:
        nan = np.full(len(title_ids), np.nan)
        return nan, nan.copy()
    catalog = titles.set_index("title_id")
    years = pd.to_numeric(catalog["release_year"], errors="coerce").reindex(title_ids)
    release = (
        pd.to_datetime({"year": years.fillna(1970).astype(int), "month": 1, "day": 1}, utc=True)
        .astype("int64")
        .to_numpy()
        / 1e9
    )
    release = np.where(years.isna().to_numpy(), np.nan, release)
    added = pd.to_datetime(catalog["date_added"], utc=True).reindex(title_ids)
    added_s = np.where(added.isna().to_numpy(), np.nan, added.astype("int64").to_numpy() / 1e9)
    return release.astype(np.float64), added_s.astype(np.float64)


def title_metadata(titles: pd.DataFrame) -> pd.DataFrame:
    """Catalog metadata the rankers read, one row per title.

    Returns:
        ``title_id``, ``event_timestamp`` (:data:`METADATA_TIMESTAMP`), ``genres``
        and ``languages`` (list[str]), ``maturity_level`` (int64, 0..3),
        ``release_year`` (int64, 0 when unknown), ``duration_min`` (float32, NaN when
        unknown) and ``is_series`` (int64 0/1).
    """

    def lists(column: str) -> pd.Series:
        return titles[column].map(lambda v: [str(x) for x in v] if v is not None and len(v) else [])

    return pd.DataFrame(
        {
            "title_id": titles["title_id"].astype(str).to_numpy(),
            "event_timestamp": METADATA_TIMESTAMP,
            "genres": lists("genres").to_numpy(),
            "languages": lists("languages").to_numpy(),
            "maturity_level": pd.to_numeric(titles["maturity_level"], errors="coerce")
            .fillna(3)
            .astype(np.int64)
            .to_numpy(),
            "release_year": pd.to_numeric(titles["release_year"], errors="coerce")
            .fillna(0)
            .astype(np.int64)
            .to_numpy(),
            "duration_min": (pd.to_numeric(titles["duration_s"], errors="coerce") / 60.0).astype(np.float32).to_numpy(),
            "is_series": (titles["type"].astype(str) == "series").astype(np.int64).to_numpy(),
        }
    )
