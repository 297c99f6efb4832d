"""Online features for the ranker, per request: one profile, ~100 candidate titles.

Wraps ``features.online.OnlineFeatureReader`` (Feast online store; title features
cached in memory by the reader itself). Profile features go through Feast, which
costs milliseconds per read in Python, so they are kept here for ``ttl_s``
seconds: a profile's activity counters may be that stale, never more.
``genre_match`` is the on-demand feature of ``ranker_v1``, computed with the
same function Feast and training use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from features.pipelines.match import genre_match_scores

if TYPE_CHECKING:
    from core.settings import Settings
    from features.online import OnlineFeatureReader

logger = logging.getLogger(__name__)

GENRE_MATCH = "genre_match"


class OnlineRankerFeatures:
    """Profile features (cached ``ttl_s``) and title feature columns for candidate lists.

    Args:
        reader: the feature store's online reader.
        ttl_s: how long a profile's features are reused.
        max_profiles: profiles kept in the cache (least recently used go first).
    """

    def __init__(self, reader: OnlineFeatureReader, ttl_s: float = 30.0, max_profiles: int = 100_000) -> None:
        self.reader = reader
        self.ttl_s = ttl_s
        self.max_profiles = max_profiles
        self._profiles: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, ttl_s: float = 30.0) -> OnlineRankerFeatures | None:
        """The workspace's online features, or ``None`` (logged) when the feature store is not set up."""
        try:
            from features.online import OnlineFeatureReader
            from features.store import open_store

            reader = OnlineFeatureReader(open_store(settings, apply=False))
            if reader.refresh() == 0:
                logger.warning("the online store has no title features; run `marquee features materialize`")
                return None
            return cls(reader, ttl_s=ttl_s)
        except Exception as exc:
            logger.warning("online features unavailable (%s); rankers that need them are switched off", exc)
            return None

    def profile(self, profile_id: str) -> dict[str, Any]:
        """The profile's online features (``{}`` values are None for an unknown profile)."""
        now = time.monotonic()
        with self._lock:
            hit = self._profiles.get(profile_id)
            if hit is not None and now - hit[0] < self.ttl_s:
                self._profiles.move_to_end(profile_id)
                return hit[1]
        values = self.reader.profile_features(profile_id)
        with self._lock:
            self._profiles[profile_id] = (now, values)
            self._profiles.move_to_end(profile_id)
            while len(self._profiles) > self.max_profiles:
                self._profiles.popitem(last=False)
        return values

    def columns(
        self,
        profile_id: str,
        title_ids: Sequence[str],
        wanted: Sequence[str],
        genres_of: Callable[[str], Sequence[str] | None],
    ) -> tuple[dict[str, float], dict[str, npt.NDArray[np.float32]]]:
        """Values of the ``wanted`` feature columns for one profile and its candidates.

        ``genres_of`` gives a title's genres from the in-memory catalog (the same
        lake metadata Feast's ``title_metadata`` view is built from), which is ten
        times faster than a per-request pandas lookup.

        Returns:
            (profile scalars: name → value, title columns: name → shape (n,) float32).
        """
        profile = self.profile(profile_id)
        scalars = {name: _number(profile[name]) for name in wanted if name in profile}
        numeric = set(self.reader.numeric_columns)
        title_cols = [c for c in wanted if c in numeric and c not in scalars]
        columns: dict[str, npt.NDArray[np.float32]] = {}
        if title_cols:
            matrix = self.reader.title_matrix(title_ids, title_cols)
            columns = {c: matrix[:, j] for j, c in enumerate(title_cols)}
        if GENRE_MATCH in wanted:
            n = len(title_ids)
            names, shares = _listlike(profile.get("affinity_genres")), _listlike(profile.get("affinity_shares"))
            columns[GENRE_MATCH] = genre_match_scores(
                [names] * n, [shares] * n, [genres_of(t) for t in title_ids]
            ).astype(np.float32)
        return scalars, columns


def _listlike(value: Any) -> list[Any] | None:
    """A list feature as a list; a missing value (None, NaN) as None."""
    if value is None or isinstance(value, float | int | str):
        return None
    return list(value)


def _number(value: Any) -> float:
    """A feature value as float; None, NaN and non-numbers become 0 (as the training matrix does)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def needs_online_features(columns: Sequence[str], sources: Mapping[str, object]) -> bool:
    """Whether a ranker's columns include anything beyond the candidate columns of ``sources``."""
    candidate = {f"cand_{s}_{suffix}" for s in sources for suffix in ("score", "rrank", "hit")}
    return any(c not in candidate for c in columns)
