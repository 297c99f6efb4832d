"""What the business filters need, held in memory: title metadata, profiles, histories.

Read once from the lake when a model version is loaded (and again on every hot
reload), so a request never touches disk. Lookups are plain dicts and numpy
arrays: a request filters a few hundred candidates in microseconds.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.domain import MaturityLevel
from core.lake import Lake

logger = logging.getLogger(__name__)

#: Share of a title watched from which it counts as completed (and is not recommended again).
COMPLETED_PROGRESS = 0.9
#: Most recent history items kept per profile (models look at the latest watches only).
MAX_HISTORY = 200


@dataclass(frozen=True)
class ProfileInfo:
    """The profile facts filters need: maturity ceiling and country of the account."""

    maturity_level: int
    country: str | None


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
    #: episode id → its series id. Models learn from what was played (episodes); pages show
    #: catalog titles (the series), so candidates are mapped through this before filtering.
    series_of: dict[str, str] = field(default_factory=dict)
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _episodes: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {title_id: idx for idx, title_id in enumerate(self.title_ids)}
        for episode_id, series_id in self.series_of.items():
            self._episodes.setdefault(series_id, []).append(episode_id)

    def canonical(self, title_id: str) -> str:
        """The catalog title a played id stands for: the series of an episode, else the id itself."""
        return self.series_of.get(title_id, title_id)

    def episodes_of(self, series_id: str) -> list[str]:
        """The episode ids of a series, in the lake's order (empty for a movie or an unknown id)."""
        return self._episodes.get(series_id, [])

    def __len__(self) -> int:
        return len(self.title_ids)

    def __contains__(self, title_id: object) -> bool:
        return title_id in self._index

    def genres_of(self, title_id: str) -> list[str] | None:
        """The title's genres, or ``None`` when the catalog does not know it."""
        idx = self._index.get(title_id)
        return self.genres[idx] if idx is not None and idx < len(self.genres) else None

    @property
    def known(self) -> bool:
        """Whether any title metadata was loaded (without it, filters cannot judge titles)."""
        return bool(self.title_ids)

    def allowed(self, title_id: str, max_level: int, country: str | None) -> bool:
        """Whether ``title_id`` may be shown at ``max_level`` in ``country``.

        Titles missing from a known catalog are not shown (nobody checked their
        rating or licence). ``country=None`` means the viewer's country is unknown:
        only titles licensed everywhere pass, the safe side for licensing.
        """
        if not self.title_ids:
            return True
        idx = self._index.get(title_id)
        if idx is None or self.maturity[idx] > max_level:
            return False
        licensed = self.countries[idx]
        return not licensed or (country is not None and country in licensed)

    @classmethod
    def from_frame(cls, titles: pd.DataFrame, episodes: pd.DataFrame | None = None) -> TitleCatalog:
        """Build from the lake's ``titles`` table (and its ``episodes``, for the episode → series map)."""
        if titles.empty:
            return cls()
        series_of = (
            dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
            if episodes is not None and not episodes.empty
            else {}
        )
        n = len(titles)
        raw_countries = titles["countries"].tolist() if "countries" in titles.columns else [None] * n
        raw_genres = titles["genres"].tolist() if "genres" in titles.columns else [None] * n
        countries = [frozenset(c) if c is not None else frozenset() for c in raw_countries]
        return cls(
            title_ids=titles["title_id"].astype(str).tolist(),
            maturity=titles["maturity_level"].fillna(int(MaturityLevel.ADULTS)).to_numpy(dtype=np.int8),
            countries=countries,
            genres=[list(g) if g is not None else [] for g in raw_genres],
            series_of=series_of,
        )


@dataclass
class ViewerData:
    """Profiles and their histories: latest watches (oldest first) and completed titles."""

    profiles: dict[str, ProfileInfo] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    completed: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_frames(cls, profiles: pd.DataFrame, accounts: pd.DataFrame, events: pd.DataFrame) -> ViewerData:
        """Build from the lake's ``profiles``, ``accounts`` and ``watch_events`` tables."""
        infos: dict[str, ProfileInfo] = {}
        if not profiles.empty:
            account_country = (
                dict(zip(accounts["account_id"], accounts["country"], strict=True)) if not accounts.empty else {}
            )
            for row in profiles.itertuples(index=False):
                country = row.country if isinstance(row.country, str) and row.country else None
                if country is None:
                    country = account_country.get(row.account_id)
                infos[str(row.profile_id)] = ProfileInfo(int(row.maturity_level), country)
        history: dict[str, list[str]] = {}
        completed: dict[str, frozenset[str]] = {}
        if not events.empty:
            frame = events[["profile_id", "title_id", "ts", "position_s", "duration_s"]].sort_values(
                ["profile_id", "ts", "title_id"], kind="stable"
            )
            duration = frame["duration_s"].to_numpy(dtype=np.float64)
            progress = np.divide(
                frame["position_s"].to_numpy(dtype=np.float64),
                duration,
                out=np.zeros(len(frame)),
                where=duration > 0,
            )
            done: defaultdict[str, set[str]] = defaultdict(set)
            for profile_id, title_id, is_done in zip(
                frame["profile_id"].tolist(), frame["title_id"].tolist(), progress >= COMPLETED_PROGRESS, strict=True
            ):
                if is_done:
                    done[profile_id].add(title_id)
            for profile_id, group in frame.groupby("profile_id", sort=False)["title_id"]:
                history[str(profile_id)] = _latest_unique(group.tolist())[-MAX_HISTORY:]
            completed = {p: frozenset(t) for p, t in done.items()}
        return cls(profiles=infos, history=history, completed=completed)


def _latest_unique(items: Iterable[str]) -> list[str]:
    """Each title once, at its latest position, oldest first."""
    last: dict[str, None] = {}
    for item in items:
        last.pop(item, None)
        last[item] = None
    return list(last)


def load_catalog(lake: Lake) -> tuple[TitleCatalog, ViewerData]:
    """Read titles, episodes, profiles, accounts and watch events from the lake into memory."""
    titles = lake.read_or_empty("titles")
    episodes = lake.read_or_empty("episodes", ["episode_id", "series_id"])
    viewers = ViewerData.from_frames(
        lake.read_or_empty("profiles"), lake.read_or_empty("accounts"), lake.read_or_empty("watch_events")
    )
    catalog = TitleCatalog.from_frame(titles, episodes)
    logger.info(
        "serving data: %d titles, %d profiles, %d histories", len(catalog), len(viewers.profiles), len(viewers.history)
    )
    return catalog, viewers
