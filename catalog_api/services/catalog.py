"""Catalog listing and title details from the in-memory snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from catalog_api.db.tables import ProfileRow
from catalog_api.playback.service import Viewer, check_access
from catalog_api.schemas.titles import EpisodePublic, SeasonPublic, TitleDetail, TitlePage, TitleSummary
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from catalog_api.services.popularity import PopularityTable
from core.errors import NotFoundError


@dataclass(frozen=True)
class TitleFilters:
    """Optional restrictions of a listing."""

    type: str | None = None
    genre: str | None = None
    year_from: int | None = None
    year_to: int | None = None

    def accepts(self, title: CatalogTitle) -> bool:
        """Whether ``title`` passes every given filter."""
        if self.type and title.type != self.type:
            return False
        if self.genre and self.genre.lower() not in {g.lower() for g in title.genres}:
            return False
        year = title.release_year or 0
        if self.year_from and year < self.year_from:
            return False
        return not (self.year_to and year > self.year_to)


def summary(title: CatalogTitle) -> TitleSummary:
    """The list form of a title."""
    return TitleSummary(
        title_id=title.title_id,
        type=title.type,
        title=title.title,
        genres=list(title.genres),
        maturity_rating=title.maturity_rating,
        maturity_level=title.maturity_level,
        release_year=title.release_year,
    )


def list_titles(
    snapshot: CatalogSnapshot,
    popularity: PopularityTable,
    *,
    maturity_level: int,
    country: str,
    filters: TitleFilters,
    sort: str,
    offset: int,
    limit: int,
) -> TitlePage:
    """Visible titles passing ``filters``, sorted, one page of them."""
    if sort == "popular" and popularity.popular:
        order = popularity.popular
    elif sort == "title":
        order = sorted(snapshot.titles, key=lambda t: (snapshot.titles[t].title.lower(), t))
    else:
        order = snapshot.newest
    matching = [
        title
        for title_id in order
        if (title := snapshot.titles.get(title_id)) is not None
        and title.visible_to(maturity_level, country)
        and filters.accepts(title)
    ]
    return TitlePage(
        items=[summary(t) for t in matching[offset : offset + limit]], total=len(matching), offset=offset, limit=limit
    )


def title_detail(snapshot: CatalogSnapshot, title_id: str, profile: ProfileRow | None) -> TitleDetail:
    """The full title; a series with its seasons. 403 when the profile may not see it."""
    title = snapshot.titles.get(title_id)
    if title is None:
        raise NotFoundError(f"no title {title_id!r} in the catalog; find ids with GET /v1/titles or /v1/search")
    if profile is not None:
        check_access(
            title, Viewer(profile.profile_id, profile.maturity_level, profile.country, profile.language, "basic")
        )
    seasons: dict[int, list[EpisodePublic]] = {}
    for episode in snapshot.episodes_by_series.get(title_id, []):
        seasons.setdefault(episode.season_number, []).append(
            EpisodePublic(
                episode_id=episode.episode_id,
                season_number=episode.season_number,
                episode_number=episode.episode_number,
                title=episode.title,
                duration_s=episode.duration_s,
            )
        )
    return TitleDetail(
        **summary(title).model_dump(),
        synopsis=title.synopsis,
        languages=list(title.languages),
        date_added=title.date_added,
        duration_s=title.duration_s,
        cast=list(title.cast),
        director=list(title.director),
        available_in=sorted(title.countries),
        available_everywhere=not title.countries,
        video_qualities=list(title.video_qualities),
        seasons=[SeasonPublic(season_number=n, episodes=eps) for n, eps in sorted(seasons.items())],
    )
