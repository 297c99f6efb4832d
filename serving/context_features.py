"""The ranker's profile features, computed at request time from the viewer context.

The model server keeps no copy of profiles or histories, so the profile columns
of ``features.pipelines.profile`` (activity counts, completion rate, decayed
genre affinity) are derived here from the history the request carries, with the
same names and meanings as the offline tables the ranker was trained on:

* ``plays_{1,7,30}d`` / ``completed_{1,7,30}d`` / ``watch_minutes_{1,7,30}d``:
  watches (one per title in the context) whose last watch falls in the window
  before ``now``; minutes are ``progress × running time``.
* ``plays_total``, ``completion_rate``, ``days_since_last_watch``, ``distinct_genres``.
* ``binge_ratio``: share of watches within 3 h of the previous one of the same
  series (episodes map to their series through the catalog).
* ``affinity_genres`` / ``affinity_shares``: watched minutes (or progress when
  the running time is unknown) split equally over a title's genres, decayed with
  a 30-day half-life, top 10 genres.

The context holds one entry per title (its latest watch), so counts are of
titles, not of repeated plays: a viewer who rewatches looks a little less
active than in the offline tables. Everything is vectorised over at most
``MAX_HISTORY`` entries: a few microseconds per request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from features.pipelines.profile import DEFAULT_HALF_LIFE_DAYS, DEFAULT_TOP_GENRES
from features.pipelines.windows import DAY_S, WINDOWS_DAYS

#: Two watches of one series this close together count as a binge (``features.pipelines.profile.BINGE_GAP``).
BINGE_GAP_S = 3 * 3600.0


def profile_features(
    title_ids: Sequence[str],
    seconds: np.ndarray,
    progress: np.ndarray,
    completed: np.ndarray,
    *,
    now_s: float,
    genres_of: Callable[[str], Sequence[str] | None],
    duration_of: Callable[[str], float],
    canonical: Callable[[str], str],
) -> dict[str, Any]:
    """Profile feature name → value for one viewer (names as in the offline feature tables).

    Args:
        title_ids: the history, oldest first, shape (n,).
        seconds: each watch's time in seconds since the epoch, shape (n,) float64.
        progress: share watched, shape (n,).
        completed: the API's completed flag, shape (n,) bool.
        now_s: the request's time (windows end here).
        genres_of, duration_of, canonical: catalog lookups.
    """
    n = len(title_ids)
    out: dict[str, Any] = {}
    if n == 0:
        for w in WINDOWS_DAYS:
            out[f"plays_{w}d"] = out[f"completed_{w}d"] = 0
            out[f"watch_minutes_{w}d"] = 0.0
        out.update(plays_total=0, days_since_last_watch=float("nan"), completion_rate=float("nan"),
                   distinct_genres=0, binge_ratio=float("nan"), affinity_genres=None, affinity_shares=None)  # fmt: skip
        return out
    durations = np.fromiter((duration_of(t) for t in title_ids), dtype=np.float64, count=n)
    minutes = progress * durations / 60.0
    age = now_s - seconds
    for w in WINDOWS_DAYS:
        inside = age < w * DAY_S
        out[f"plays_{w}d"] = int(inside.sum())
        out[f"watch_minutes_{w}d"] = float(minutes[inside].sum())
        out[f"completed_{w}d"] = int(completed[inside].sum())
    out["plays_total"] = n
    out["days_since_last_watch"] = float(age.min() / DAY_S)
    out["completion_rate"] = float(completed.mean())
    series = [canonical(t) for t in title_ids]
    genres = [genres_of(s) or () for s in series]
    out["distinct_genres"] = len({g for gs in genres for g in gs})
    out["binge_ratio"] = _binge_ratio(series, seconds)
    out["affinity_genres"], out["affinity_shares"] = _affinity(genres, np.where(durations > 0, minutes, progress), age)
    return out


def _binge_ratio(series: Sequence[str], seconds: np.ndarray) -> float:
    last: dict[str, float] = {}
    binges = 0
    for s, ts in zip(series, seconds.tolist(), strict=True):
        previous = last.get(s)
        if previous is not None and ts - previous <= BINGE_GAP_S:
            binges += 1
        last[s] = ts
    return binges / len(series)


def _affinity(
    genres: Sequence[Sequence[str]], weight: np.ndarray, age_s: np.ndarray
) -> tuple[list[str] | None, list[float] | None]:
    decay = np.exp2(-np.maximum(age_s, 0.0) / (DEFAULT_HALF_LIFE_DAYS * DAY_S))
    totals: dict[str, float] = {}
    for gs, w in zip(genres, (weight * decay).tolist(), strict=True):
        if not gs or not math.isfinite(w) or w <= 0:
            continue
        share = w / len(gs)
        for g in gs:
            totals[g] = totals.get(g, 0.0) + share
    whole = sum(totals.values())
    if whole <= 0:
        return None, None
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:DEFAULT_TOP_GENRES]
    return [g for g, _ in top], [v / whole for _, v in top]
