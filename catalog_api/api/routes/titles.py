"""``/v1/titles``: the catalog, filtered and paged; a title with its seasons and availability."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from catalog_api.api.deps import CurrentAccount, SessionDep, StateDep
from catalog_api.schemas.titles import TitleDetail, TitlePage
from catalog_api.security.maturity import strictest_profile
from catalog_api.services import catalog, profiles

router = APIRouter(prefix="/v1/titles", tags=["catalog"])


@router.get("", response_model=TitlePage)
def list_titles(
    state: StateDep,
    session: SessionDep,
    account: CurrentAccount,
    profile_id: Annotated[str | None, Query(description="apply this profile's maturity level and country")] = None,
    type: Annotated[Literal["movie", "series"] | None, Query()] = None,
    genre: str | None = None,
    year_from: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    year_to: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    sort: Literal["newest", "title", "popular"] = "newest",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TitlePage:
    """A page of titles for the profile's maturity level and country.

    Without ``profile_id``: for the account's most restricted profile (all titles of the
    account's country when it has no profile yet).
    """
    level, country = 3, account.country
    profile = (
        profiles.get_owned_profile(session, account.account_id, profile_id)
        if profile_id is not None
        else strictest_profile(session, account.account_id)
    )
    if profile is not None:
        level, country = profile.maturity_level, profile.country
    return catalog.list_titles(
        state.catalog.snapshot,
        state.popularity.table,
        maturity_level=level,
        country=country,
        filters=catalog.TitleFilters(type=type, genre=genre, year_from=year_from, year_to=year_to),
        sort=sort,
        offset=offset,
        limit=limit,
    )


@router.get("/{title_id}", response_model=TitleDetail)
def get_title(
    title_id: str, state: StateDep, session: SessionDep, account: CurrentAccount, profile_id: str | None = None
) -> TitleDetail:
    """A title with seasons and episodes (series) and where it is licensed; 403 above the profile's level.

    Without ``profile_id`` the title is judged for the account's most restricted profile
    (``security.maturity.strictest_profile``), so a kids context never sees a mature title.
    """
    profile = (
        profiles.get_owned_profile(session, account.account_id, profile_id)
        if profile_id is not None
        else strictest_profile(session, account.account_id)
    )
    return catalog.title_detail(state.catalog.snapshot, title_id, profile)
