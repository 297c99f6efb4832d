"""An in-memory, read-only view of the catalog for the hot paths.

The catalog changes only when it is synced from the lake, while every home,
search and manifest request reads it, so the API keeps one immutable snapshot
in memory (8,807 Netflix titles take a few MB) and swaps it atomically on sync.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_api.db.tables import EpisodeRow, TitleRow
from core.rules import may_see


@dataclass(frozen=True)
class CatalogTitle:
    """One title as the hot paths need it."""

    title_id: str
    type: str
    title: str
    synopsis: str
    genres: tuple[str, ...]
    languages: tuple[str, ...]
    maturity_rating: str
    maturity_level: int
    release_year: int | None
    date_added: datetime | None
    duration_s: int | None
    cast: tuple[str, ...]
    director: tuple[str, ...]
    countries: frozenset[str]
    video_qualities: tuple[str, ...]

    def visible_to(self, maturity_level: int, country: str | None) -> bool:
        """Whether a viewer at ``maturity_level`` in ``country`` may see this title (``core.rules.may_see``)."""
        return may_see(self.maturity_level, self.countries, maturity_level, country)


@dataclass(frozen=True)
class CatalogEpisode:
    """One episode with its place in the series."""

    episode_id: str
    series_id: str
    season_number: int
    episode_number: int
    title: str
    duration_s: int


class CatalogSnapshot:
    """Titles, episodes and the episode→series map, indexed for lookups."""

    def __init__(self, titles: Iterable[CatalogTitle], episodes: Iterable[CatalogEpisode]) -> None:
        self.titles: dict[str, CatalogTitle] = {t.title_id: t for t in titles}
        by_series: dict[str, list[CatalogEpisode]] = defaultdict(list)
        for episode in episodes:
            by_series[episode.series_id].append(episode)
        self.episodes_by_series: dict[str, list[CatalogEpisode]] = {
            series: sorted(eps, key=lambda e: (e.season_number, e.episode_number)) for series, eps in by_series.items()
        }
        self.episodes: dict[str, CatalogEpisode] = {
            e.episode_id: e for eps in self.episodes_by_series.values() for e in eps
        }
        #: Titles newest first (date added, then release year), for "New Releases".
        self.newest: list[str] = [
            t.title_id
            for t in sorted(
                self.titles.values(),
                key=lambda t: (t.date_added.timestamp() if t.date_added else 0.0, t.release_year or 0, t.title_id),
                reverse=True,
            )
        ]

        #: Values derived from this snapshot by other modules (e.g. prebuilt row items), dropped with it.
        self.memo: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.titles)

    def resolve(self, title_or_episode_id: str) -> CatalogTitle | None:
        """The title itself, or the series an episode id belongs to."""
        title = self.titles.get(title_or_episode_id)
        if title is not None:
            return title
        episode = self.episodes.get(title_or_episode_id)
        return self.titles.get(episode.series_id) if episode else None

    def next_episode(self, episode_id: str) -> CatalogEpisode | None:
        """The episode after ``episode_id`` in its series (across seasons), or None at the end."""
        episode = self.episodes.get(episode_id)
        if episode is None:
            return None
        ordered = self.episodes_by_series[episode.series_id]
        index = ordered.index(episode)
        return ordered[index + 1] if index + 1 < len(ordered) else None


def load_snapshot(session: Session) -> CatalogSnapshot:
    """Read the whole catalog from the database into a snapshot."""
    titles = [
        CatalogTitle(
            title_id=row.title_id,
            type=row.type,
            title=row.title,
            synopsis=row.synopsis,
            genres=tuple(row.genres or ()),
            languages=tuple(row.languages or ()),
            maturity_rating=row.maturity_rating,
            maturity_level=row.maturity_level,
            release_year=row.release_year,
            date_added=row.date_added,
            duration_s=row.duration_s,
            cast=tuple(row.cast or ()),
            director=tuple(row.director or ()),
            countries=frozenset(row.countries or ()),
            video_qualities=tuple(row.video_qualities or ("SD", "HD")),
        )
        for row in session.scalars(select(TitleRow))
    ]
    episodes = [
        CatalogEpisode(e.episode_id, e.series_id, e.season_number, e.episode_number, e.title, e.duration_s)
        for e in session.scalars(select(EpisodeRow))
    ]
    return CatalogSnapshot(titles, episodes)
