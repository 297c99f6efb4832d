"""Profile features: activity counts and time-decayed genre affinity, as of T.

Pure pandas/numpy (no Feast), so the definitions are testable on frames built
in a test and fast on a million plays.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from features.pipelines.windows import DAY_S, WINDOWS_DAYS, Timeline, from_seconds, prefix_sum, to_seconds

logger = logging.getLogger(__name__)

#: A play within this long after the profile's previous play of the same catalog title is a binge play.
BINGE_GAP = timedelta(hours=3)

#: Columns of the ``profile_activity`` feature table (besides ``profile_id`` and ``event_timestamp``).
PROFILE_ACTIVITY_COLUMNS = (
    *(f"plays_{w}d" for w in WINDOWS_DAYS),
    *(f"watch_minutes_{w}d" for w in WINDOWS_DAYS),
    *(f"completed_{w}d" for w in WINDOWS_DAYS),
    "plays_total",
    "days_since_last_watch",
    "completion_rate",
    "distinct_genres",
    "binge_ratio",
)

#: Genre affinity keeps this many genres per profile (highest share first).
DEFAULT_TOP_GENRES = 10

#: Default half-life of the genre-affinity decay.
DEFAULT_HALF_LIFE_DAYS = 30.0


def profile_activity(
    plays: pd.DataFrame,
    title_genres: dict[str, list[str]],
    profile_ids: npt.NDArray[np.object_],
    seconds: npt.NDArray[np.int64],
) -> pd.DataFrame:
    """Activity features of ``profile_ids[i]`` from its plays strictly before ``seconds[i]``.

    Args:
        plays: from :func:`features.pipelines.plays.plays_from_events`.
        title_genres: catalog ``title_id`` → genres (for ``distinct_genres``).
        profile_ids: shape (m,) str, the profile of each snapshot.
        seconds: shape (m,) int64, the snapshot time T in seconds since the epoch.

    Returns:
        One row per snapshot: ``profile_id``, ``event_timestamp`` (T, UTC) and
        :data:`PROFILE_ACTIVITY_COLUMNS` — ``plays_{1,7,30}d`` (int64),
        ``watch_minutes_{1,7,30}d`` (float32), ``completed_{1,7,30}d`` (int64),
        ``plays_total`` (int64), ``days_since_last_watch`` (float32, NaN before the
        first play), ``completion_rate`` (float32, completed / plays, lifetime),
        ``distinct_genres`` (int64, lifetime) and ``binge_ratio`` (float32, share of
        lifetime plays that came within 3 h of the previous play of the same catalog
        title — series binges).
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    vocabulary, codes = _codes(plays["profile_id"].to_numpy(), np.asarray(profile_ids, dtype=object))
    play_codes = vocabulary.get_indexer(plays["profile_id"].to_numpy()).astype(np.int64)
    play_seconds = to_seconds(plays["ts"])
    span = int(max(play_seconds.max(initial=0), seconds.max(initial=0))) + 1
    line, order = Timeline.build(play_codes, play_seconds, span)
    query = line.query(codes, seconds)
    minutes = prefix_sum(plays["minutes"].to_numpy(np.float64)[order])
    completed = prefix_sum(plays["completed"].to_numpy(np.float64)[order])
    starts = prefix_sum(plays["play"].to_numpy(np.float64)[order])
    binge = prefix_sum(_binge_flags(plays)[order])

    out: dict[str, object] = {
        "profile_id": np.asarray(profile_ids, dtype=object),
        "event_timestamp": from_seconds(seconds),
    }
    for w in WINDOWS_DAYS:
        out[f"plays_{w}d"] = np.rint(query.sum(starts, w * DAY_S)).astype(np.int64)
    for w in WINDOWS_DAYS:
        out[f"watch_minutes_{w}d"] = query.sum(minutes, w * DAY_S).astype(np.float32)
    for w in WINDOWS_DAYS:
        out[f"completed_{w}d"] = np.rint(query.sum(completed, w * DAY_S)).astype(np.int64)
    total = np.rint(query.sum(starts, None)).astype(np.int64)
    out["plays_total"] = total
    last = query.last()
    out["days_since_last_watch"] = ((seconds - last) / DAY_S).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["completion_rate"] = (query.sum(completed, None) / total).astype(np.float32)
        out["binge_ratio"] = (query.sum(binge, None) / total).astype(np.float32)
    out["distinct_genres"] = _distinct_genres(plays, title_genres, play_codes, play_seconds, codes, seconds, span)
    return pd.DataFrame(out)


def genre_affinity(
    plays: pd.DataFrame,
    title_genres: dict[str, list[str]],
    profile_ids: npt.NDArray[np.object_],
    seconds: npt.NDArray[np.int64],
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    top_n: int = DEFAULT_TOP_GENRES,
) -> pd.DataFrame:
    """Time-decayed share of watch time per genre, from plays strictly before T.

    A play's minutes are split equally over its title's genres and weighted by
    ``0.5 ** (age / half_life)``. The share of a genre is its weighted minutes over
    all weighted minutes. Because every weight of one snapshot carries the same
    factor ``0.5 ** (-T / half_life)``, shares only change when a play arrives, and
    the sums can be accumulated with weights anchored at the profile's first play.

    The genre set differs per dataset (20 MovieLens genres, 40+ Netflix ones), so
    each row stores its ``top_n`` genres as two parallel arrays rather than one
    column per genre: the schema stays fixed whatever the catalog, and a ranker
    gets a profile-title match by looking up the title's genres (see the
    ``genre_match`` on-demand feature).

    Returns:
        ``profile_id``, ``event_timestamp``, ``affinity_genres`` (list[str], share
        descending) and ``affinity_shares`` (list[float32], same order, sum ≤ 1).
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    profile_ids = np.asarray(profile_ids, dtype=object)
    exploded = _explode_genres(plays, title_genres)
    genres = exploded.vocabulary
    shares = np.zeros((len(seconds), len(genres)), dtype=np.float64)
    if len(exploded.play):
        vocabulary, codes = _codes(plays["profile_id"].to_numpy(), profile_ids)
        all_codes = vocabulary.get_indexer(plays["profile_id"].to_numpy()).astype(np.int64)
        all_seconds = to_seconds(plays["ts"])
        play_codes = all_codes[exploded.play]
        play_seconds = all_seconds[exploded.play]
        first = pd.Series(all_seconds).groupby(all_codes).transform("min").to_numpy()[exploded.play]
        tau = half_life_days * DAY_S / math.log(2.0)
        exponent = (play_seconds - first) / tau
        if exponent.max(initial=0.0) > 700:
            logger.warning("genre affinity: half-life %.1f days is too short for this span; clipping", half_life_days)
        weight = exploded.minutes * np.exp(np.minimum(exponent, 700.0))
        span = int(max(play_seconds.max(initial=0), seconds.max(initial=0))) + 1
        for g in range(len(genres)):
            mask = exploded.genre == g
            line, order = Timeline.build(play_codes[mask], play_seconds[mask], span)
            # Cumulative sums restart per profile: weights of different profiles have
            # different anchors, and one running total across them would lose precision.
            running = pd.Series(weight[mask][order]).groupby(line.codes).cumsum().to_numpy()
            genre_query = line.query(codes, seconds)
            hi = genre_query.bound(0)
            has = hi > genre_query.bound(None)
            shares[has, g] = running[hi[has] - 1]
        total = shares.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(total > 0, shares / total, 0.0)
    names, values = _top_arrays(shares, genres, top_n)
    return pd.DataFrame(
        {
            "profile_id": profile_ids,
            "event_timestamp": from_seconds(seconds),
            "affinity_genres": names.array,
            "affinity_shares": values.array,
        }
    )


def _top_arrays(shares: npt.NDArray[np.float64], genres: list[str], top_n: int) -> tuple[pd.Series, pd.Series]:
    """The top genres of each row as two arrow-backed list columns (no Python list per row)."""
    k = max(0, min(top_n, len(genres)))
    order = np.argsort(-shares, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(shares, order, axis=1)
    keep = top > 0
    counts = keep.sum(axis=1)
    offsets = np.zeros(len(shares) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    vocab = np.asarray(genres, dtype=object)
    name_list = pa.ListArray.from_arrays(pa.array(offsets), pa.array(vocab[order[keep]], pa.string()))
    share_list = pa.ListArray.from_arrays(pa.array(offsets), pa.array(top[keep].astype(np.float32), pa.float32()))
    return (
        pd.Series(pd.arrays.ArrowExtensionArray(name_list)),
        pd.Series(pd.arrays.ArrowExtensionArray(share_list)),
    )


@dataclass(frozen=True)
class _GenrePlays:
    """One row per (play, genre of its title): positions into ``plays``, genre codes, split minutes."""

    play: npt.NDArray[np.intp]
    genre: npt.NDArray[np.intp]
    minutes: npt.NDArray[np.float64]
    vocabulary: list[str]


def _explode_genres(plays: pd.DataFrame, title_genres: dict[str, list[str]]) -> _GenrePlays:
    """Explode plays by genre with array gathers (no per-row Python), minutes split equally."""
    vocabulary = sorted({g for genres in title_genres.values() for g in genres})
    genre_index = {g: i for i, g in enumerate(vocabulary)}
    catalog = pd.Index(list(title_genres))
    lengths = np.fromiter((len(g) for g in title_genres.values()), dtype=np.int64, count=len(title_genres))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(
        (genre_index[g] for genres in title_genres.values() for g in genres), dtype=np.intp, count=int(offsets[-1])
    )
    title_code = catalog.get_indexer(plays["title_id"].to_numpy())
    known = title_code >= 0
    counts = np.where(known, lengths[np.maximum(title_code, 0)], 0)
    play = np.repeat(np.arange(len(plays)), counts)
    first = np.repeat(offsets[np.maximum(title_code, 0)], counts)
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    genre = flat[first + (np.arange(len(play)) - run_start)]
    minutes = plays["minutes"].to_numpy(np.float64)
    split = np.where(counts > 0, minutes / np.maximum(counts, 1), 0.0)[play]
    return _GenrePlays(play, genre, split, vocabulary)


def _distinct_genres(
    plays: pd.DataFrame,
    title_genres: dict[str, list[str]],
    play_codes: npt.NDArray[np.int64],
    play_seconds: npt.NDArray[np.int64],
    codes: npt.NDArray[np.int64],
    seconds: npt.NDArray[np.int64],
    span: int,
) -> npt.NDArray[np.int64]:
    exploded = _explode_genres(plays, title_genres)
    if len(exploded.play) == 0:
        return np.zeros(len(seconds), dtype=np.int64)
    first_seen = (
        pd.DataFrame(
            {
                "p": play_codes[exploded.play],
                "g": exploded.genre,
                "s": play_seconds[exploded.play],
            }
        )
        .groupby(["p", "g"], sort=False)["s"]
        .min()
        .reset_index()
    )
    line, _ = Timeline.build(first_seen["p"].to_numpy(np.int64), first_seen["s"].to_numpy(np.int64), span)
    return line.window_count(codes, seconds, None)


def _binge_flags(plays: pd.DataFrame) -> npt.NDArray[np.float64]:
    """1.0 on the start of a play that began within BINGE_GAP of the profile's previous play of the same title."""
    frame = pd.DataFrame(
        {
            "profile_id": plays["profile_id"].to_numpy(),
            "title_id": plays["title_id"].to_numpy(),
            "s": to_seconds(plays["ts"]),
        }
    )
    frame = frame[plays["play"].to_numpy() == 1].sort_values(["profile_id", "title_id", "s"], kind="stable")
    same = (frame["profile_id"].to_numpy()[1:] == frame["profile_id"].to_numpy()[:-1]) & (
        frame["title_id"].to_numpy()[1:] == frame["title_id"].to_numpy()[:-1]
    )
    gap = np.diff(frame["s"].to_numpy())
    flags = np.zeros(len(frame), dtype=np.float64)
    flags[1:] = (same & (gap <= BINGE_GAP.total_seconds())).astype(np.float64)
    out = np.zeros(len(plays), dtype=np.float64)
    out[frame.index.to_numpy()] = flags
    return out


def _codes(
    play_ids: npt.NDArray[np.object_], query_ids: npt.NDArray[np.object_]
) -> tuple[pd.Index, npt.NDArray[np.int64]]:
    """A shared integer code for the entities of plays and of queries (unknown queries get their own)."""
    vocabulary = pd.Index(pd.unique(np.concatenate([play_ids, query_ids])))
    return vocabulary, vocabulary.get_indexer(query_ids).astype(np.int64)
