"""Ranker features per request: one viewer, ~100 candidate titles.

Title features come from ``features.online.OnlineFeatureReader`` (Feast online
store; cached in memory by the reader itself). Profile features do not: the
model server keeps no copy of profiles, so they are computed from the request's
viewer context (``serving.context_features``) and passed in. ``genre_match`` is
the on-demand feature of ``ranker_v1``, computed with the same function Feast and
training use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from core.settings import Settings
    from features.online import OnlineFeatureReader

logger = logging.getLogger(__name__)

GENRE_MATCH = "genre_match"


class OnlineRankerFeatures:
    """Title feature columns for candidate lists, next to profile values computed by the caller.

    Args:
        reader: the feature store's online reader (title features).
    """

    def __init__(self, reader: OnlineFeatureReader) -> None:
        self.reader = reader

    @classmethod
    def open(cls, settings: Settings) -> OnlineRankerFeatures | None:
        """The workspace's online features, or ``None`` (logged) when the feature store is not set up."""
        try:
            from features.online import OnlineFeatureReader
            from features.store import open_store

            reader = OnlineFeatureReader(open_store(settings, apply=False))
            if reader.refresh() == 0:
                logger.warning("the online store has no title features; run `marquee features materialize`")
                return None
            reader.follow()  # pushes are re-read as they land, off the request path, not at the next request
            return cls(reader)
        except Exception as exc:
            logger.warning("online features unavailable (%s); rankers that need them are switched off", exc)
            return None

    def close(self) -> None:
        """Stop following the online store (the server's shutdown)."""
        self.reader.stop_following()

    def columns(
        self,
        profile: Mapping[str, Any],
        title_ids: Sequence[str],
        wanted: Sequence[str],
        genre_match: Callable[[Sequence[str] | None, Sequence[float] | None, Sequence[str]], npt.NDArray[np.float64]],
    ) -> tuple[dict[str, float], dict[str, npt.NDArray[np.float32]]]:
        """Values of the ``wanted`` feature columns for one viewer and its candidates.

        ``profile`` holds the viewer's profile features by name (computed from its
        context by ``serving.context_features.profile_features``).

        ``genre_match(genres, shares, title_ids)`` scores the titles against the
        profile's genre affinity from the in-memory catalog (the same lake metadata
        Feast's ``title_metadata`` view is built from, the same numbers as
        ``features.pipelines.match.genre_match_scores``), vectorised.

        Returns:
            (profile scalars: name → value, title columns: name → shape (n,) float32).
        """
        scalars = {name: _number(profile[name]) for name in wanted if name in profile}
        numeric = set(self.reader.numeric_columns)
        title_cols = [c for c in wanted if c in numeric and c not in scalars]
        columns: dict[str, npt.NDArray[np.float32]] = {}
        if title_cols:
            matrix = self.reader.title_matrix(title_ids, title_cols)
            columns = {c: matrix[:, j] for j, c in enumerate(title_cols)}
        if GENRE_MATCH in wanted:
            names, shares = _listlike(profile.get("affinity_genres")), _listlike(profile.get("affinity_shares"))
            columns[GENRE_MATCH] = genre_match(names, shares, title_ids).astype(np.float32)
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
