"""What the business filters need, held in memory: title metadata only.

Read once from the lake when a model version is loaded, so a request never
touches disk. Profiles and histories are not kept here: every request carries
its viewer (``serving.contract.ViewerContext``). Lookups are plain dicts and
numpy arrays: a request filters a few hundred candidates in microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import pandas as pd

from core.domain import MaturityLevel
from core.lake import Lake
from core.rules import canonical_title, may_see
from models.lightfm_hybrid import title_features

logger = logging.getLogger(__name__)


@dataclass
class TitleCatalog:
    """Title metadata as arrays indexed by a private ``title_idx``.

    Attributes:
        title_ids: shape (n,), str.
        maturity: shape (n,), int8 — ``MaturityLevel`` of each title.
        countries: per title, the set of licensed countries; empty means everywhere.
        genres: per title, its genres (for the ranker's ``genre_match`` feature).
    """

    title_ids: list[str] = field(default_factory=list)
    maturity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    countries: list[frozenset[str]] = field(default_factory=list)
    genres: list[list[str]] = field(default_factory=list)
    #: Running time in seconds of each title (0 when unknown), for the watch-minutes features.
    durations: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    #: episode id → its series id. Models learn from what was played (episodes); pages show
    #: catalog titles (the series), so candidates are mapped through this before filtering.
    series_of: dict[str, str] = field(default_factory=dict)
    #: Running time in seconds of each episode (0 when unknown).
    episode_durations: dict[str, float] = field(default_factory=dict)
    #: Per title, its content tokens (``models.lightfm_hybrid.title_features``: genres, cast, director,
    #: tags, maturity, decade), for the content neighbours of titles no model knows; empty when not loaded.
    tokens: list[list[str]] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _durations: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _genre_index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _genre_matrix: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32), init=False, repr=False)
    _episodes: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    _played_index: dict[str, int] | None = field(default=None, init=False, repr=False)
    _visible: dict[tuple[int, str | None], list[bool]] = field(default_factory=dict, init=False, repr=False)
    _pairs: tuple[list[tuple[int, frozenset[str]]], np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {title_id: idx for idx, title_id in enumerate(self.title_ids)}
        self._durations = {**dict(zip(self.title_ids, self.durations.tolist(), strict=False)), **self.episode_durations}
        vocabulary = sorted({g for genres in self.genres for g in genres})
        self._genre_index = {g: j for j, g in enumerate(vocabulary)}
        # titles × genres, 1 where the title has the genre; one extra all-zero row for unknown ids
        matrix = np.zeros((len(self.title_ids) + 1, len(vocabulary)), dtype=np.float32)
        for i, genres in enumerate(self.genres):
            matrix[i, [self._genre_index[g] for g in set(genres)]] = 1.0
        self._genre_matrix = matrix
        for episode_id, series_id in self.series_of.items():
            self._episodes.setdefault(series_id, []).append(episode_id)

    def canonical(self, title_id: str) -> str:
        """The catalog title a played id stands for: the series of an episode, else the id itself."""
        return canonical_title(title_id, self.series_of)

    def episodes_of(self, series_id: str) -> list[str]:
        """The episode ids of a series, in the lake's order (empty for a movie or an unknown id)."""
        return self._episodes.get(series_id, [])

    def __len__(self) -> int:
        return len(self.title_ids)

    def __contains__(self, title_id: object) -> bool:
        return title_id in self._index

    def title_index(self, title_id: str) -> int | None:
        """The index of a catalog title in ``title_ids`` (``None``: not a catalog title)."""
        return self._index.get(title_id)

    def duration_of(self, title_id: str) -> float:
        """The running time in seconds of a title or an episode, 0 when unknown."""
        return self._durations.get(title_id, 0.0)

    def genre_match(
        self, names: Sequence[str] | None, shares: Sequence[float] | None, ids: Sequence[str]
    ) -> np.ndarray:
        """For each id, the sum of ``shares`` over the genres it has (``features.pipelines.match``), shape (n,).

        The same numbers as ``genre_match_scores`` for one profile, as one matrix-vector
        product over a titles × genres 0/1 matrix built once (ids the catalog does not
        know, episodes included, score 0 as they do there).
        """
        if not names or not shares:
            return np.zeros(len(ids), dtype=np.float64)
        weights = np.zeros(self._genre_matrix.shape[1], dtype=np.float64)
        for name, share in zip(names, shares, strict=False):
            j = self._genre_index.get(name)
            if j is not None:
                weights[j] = float(share)
        missing = len(self.title_ids)
        rows = np.fromiter(map(self._index.get, ids, repeat(missing, len(ids))), dtype=np.intp, count=len(ids))
        return self._genre_matrix[rows] @ weights

    def genres_of(self, title_id: str) -> list[str] | None:
        """The title's genres, or ``None`` when the catalog does not know it."""
        idx = self._index.get(title_id)
        return self.genres[idx] if idx is not None and idx < len(self.genres) else None

    @property
    def known(self) -> bool:
        """Whether any title metadata was loaded (without it, filters cannot judge titles)."""
        return bool(self.title_ids)

    def allowed(self, title_id: str, max_level: int, country: str | None) -> bool:
        """Whether ``title_id`` may be shown at ``max_level`` in ``country`` (``core.rules.may_see``).

        With no catalog loaded at all, filters cannot judge titles and let them pass.
        """
        if not self.title_ids:
            return True
        idx = self._index.get(title_id)
        if idx is None:
            return may_see(None, None, max_level, country)
        return may_see(int(self.maturity[idx]), self.countries[idx], max_level, country)

    def played_index(self) -> dict[str, int]:
        """Played id → index of the catalog title it stands for (a title itself, an episode its series).

        Ids the catalog does not know (an episode of an unknown series too) are absent.
        Built once: requests map a few hundred candidates through it.
        """
        if self._played_index is None:
            index = dict(self._index)
            index.update({e: self._index[s] for e, s in self.series_of.items() if s in self._index})
            self._played_index = index
        return self._played_index

    def visible_flags(self, max_level: int, country: str | None) -> list[bool]:
        """``allowed`` of every catalog title at these filters, by title index, plus ``False`` at index ``len(self)``.

        The extra entry answers for unknown ids (``played_index().get(id, len(self))``).
        ``core.rules.may_see`` decides, once per distinct (rating, licence) pair of the
        catalog, so a new (level, country) costs a few hundred rule calls, not one per
        title and episode; remembered per (level, country), of which a handful ever occur.
        """
        key = (max_level, country)
        found = self._visible.get(key)
        if found is None:
            pairs, codes = self._rule_pairs()
            verdicts = np.array([may_see(level, licence, max_level, country) for level, licence in pairs], bool)
            found = verdicts[codes].tolist() if len(codes) else []
            found.append(False)
            self._visible[key] = found
        return found

    def _rule_pairs(self) -> tuple[list[tuple[int, frozenset[str]]], np.ndarray]:
        """The distinct (maturity, licence) pairs of the catalog, and each title's pair (index into them).

        Built once: a new (level, country) then costs one rule call per pair and one
        gather, instead of a Python loop over every title per key.
        """
        if self._pairs is None:
            position: dict[tuple[int, frozenset[str]], int] = {}
            codes = np.fromiter(
                (
                    position.setdefault(pair, len(position))
                    for pair in zip(self.maturity.tolist(), self.countries, strict=True)
                ),
                dtype=np.intp,
                count=len(self.countries),
            )
            self._pairs = (list(position), codes)
        return self._pairs

    @classmethod
    def from_frame(cls, titles: pd.DataFrame, episodes: pd.DataFrame | None = None) -> TitleCatalog:
        """Build from the lake's ``titles`` table (and its ``episodes``, for the episode → series map)."""
        if titles.empty:
            return cls()
        has_episodes = episodes is not None and not episodes.empty
        series_of = (
            dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
            if episodes is not None and has_episodes
            else {}
        )
        episode_durations = (
            dict(zip(episodes["episode_id"].astype(str), episodes["duration_s"].fillna(0).astype(float), strict=True))
            if episodes is not None and has_episodes and "duration_s" in episodes.columns
            else {}
        )
        n = len(titles)
        raw_countries = titles["countries"].tolist() if "countries" in titles.columns else [None] * n
        raw_genres = titles["genres"].tolist() if "genres" in titles.columns else [None] * n
        countries = [frozenset(c) if c is not None else frozenset() for c in raw_countries]
        tokens = title_features(titles)
        return cls(
            title_ids=titles["title_id"].astype(str).tolist(),
            maturity=titles["maturity_level"].fillna(int(MaturityLevel.ADULTS)).to_numpy(dtype=np.int8),
            countries=countries,
            genres=[list(g) if g is not None else [] for g in raw_genres],
            durations=(
                titles["duration_s"].fillna(0).to_numpy(dtype=np.float32)
                if "duration_s" in titles.columns
                else np.zeros(n, dtype=np.float32)
            ),
            series_of=series_of,
            episode_durations=episode_durations,
            tokens=[tokens[t] for t in titles["title_id"].astype(str).tolist()],
        )


def load_catalog(lake: Lake) -> TitleCatalog:
    """Read titles and episodes from the lake into memory (no profiles, no watch events)."""
    titles = lake.read_or_empty("titles")
    episodes = lake.read_or_empty("episodes", ["episode_id", "series_id", "duration_s"])
    catalog = TitleCatalog.from_frame(titles, episodes)
    logger.info("serving catalog: %d titles, %d episodes", len(catalog), len(catalog.series_of))
    return catalog
