"""Schemas of the catalog: titles, series with seasons and episodes, pages."""

from __future__ import annotations

from pydantic import Field

from catalog_api.schemas.common import PublicModel, UtcDateTime


class EpisodePublic(PublicModel):
    """One episode."""

    episode_id: str
    season_number: int
    episode_number: int
    title: str
    duration_s: int


class SeasonPublic(PublicModel):
    """A season and its episodes in order."""

    season_number: int
    episodes: list[EpisodePublic]


class TitleSummary(PublicModel):
    """A title as rows and lists show it."""

    title_id: str
    type: str
    title: str
    genres: list[str]
    maturity_rating: str
    maturity_level: int
    release_year: int | None


class TitleDetail(TitleSummary):
    """A title with everything the detail page shows; series carry their seasons."""

    synopsis: str
    languages: list[str]
    date_added: UtcDateTime | None
    duration_s: int | None
    cast: list[str]
    director: list[str]
    available_in: list[str]
    available_everywhere: bool
    video_qualities: list[str]
    seasons: list[SeasonPublic] = Field(default_factory=list)


class TitlePage(PublicModel):
    """One page of titles."""

    items: list[TitleSummary]
    total: int
    offset: int
    limit: int


class SearchResult(TitleSummary):
    """A search hit with its final score."""

    score: float


class SearchResponse(PublicModel):
    """Search hits after filters and the profile's re-ranking."""

    query: str
    items: list[SearchResult]
    total: int
    backend: str
