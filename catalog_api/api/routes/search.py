"""``/v1/search``: full text, typo tolerant, prefix as the user types; filtered and re-ranked."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from catalog_api.api.deps import CurrentAccount, SessionDep, StateDep
from catalog_api.schemas.titles import SearchResponse, SearchResult
from catalog_api.services import profiles
from catalog_api.services.affinity import genre_affinity
from catalog_api.services.catalog import TitleFilters
from catalog_api.services.events import latest_positions
from catalog_api.services.search import search_titles

router = APIRouter(prefix="/v1", tags=["search"])


@router.get("/search", response_model=SearchResponse)
def search(
    state: StateDep,
    session: SessionDep,
    account: CurrentAccount,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words; the last may be partial")],
    profile_id: str,
    type: Literal["movie", "series"] | None = None,
    genre: str | None = None,
    year_from: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    year_to: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResponse:
    """Titles matching ``q`` that the profile may see, best first for this profile."""
    profile = profiles.get_owned_profile(session, account.account_id, profile_id)
    affinity = genre_affinity(latest_positions(session, profile.profile_id, limit=100), state.catalog.snapshot)
    ranked = search_titles(
        state.catalog.backend,
        state.catalog.snapshot,
        q,
        maturity_level=profile.maturity_level,
        country=profile.country,
        filters=TitleFilters(type=type, genre=genre, year_from=year_from, year_to=year_to),
        affinity=affinity,
        plays=state.popularity.table.plays,
        limit=limit,
    )
    items = [
        SearchResult(
            title_id=t.title_id,
            type=t.type,
            title=t.title,
            genres=list(t.genres),
            maturity_rating=t.maturity_rating,
            maturity_level=t.maturity_level,
            release_year=t.release_year,
            score=score,
        )
        for t, score in ranked
    ]
    return SearchResponse(query=q, items=items, total=len(items), backend=state.catalog.backend.name)


__all__ = ["router"]
