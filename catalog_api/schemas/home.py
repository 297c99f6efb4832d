"""Schemas of the home page: rows, experiment assignment, prefetch hints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from catalog_api.schemas.common import PublicModel


class RowItem(PublicModel):
    """One title in a row."""

    title_id: str
    title: str
    type: str
    genres: list[str]
    maturity_rating: str
    release_year: int | None
    episode_id: str | None = None
    position_s: int | None = None


class HomeRow(PublicModel):
    """A row: a stable key (exposures use it), a display title and its items."""

    key: str
    title: str
    items: list[RowItem]


class ExperimentInfo(PublicModel):
    """The experiment variants that shaped this page."""

    assignments: list[dict[str, Any]]
    variant: str
    layout: str
    model_version: str


class PrefetchHint(PublicModel):
    """Signed URLs of the first segments of a title the profile is likely to play."""

    title_id: str
    quality: str
    urls: list[str]


class HomeResponse(PublicModel):
    """The home page."""

    request_id: str = Field(
        description="this page's id, the key of its exposures: the request's id, or the client's X-Request-ID "
        "with a suffix that makes it unique"
    )
    rows: list[HomeRow]
    source: Literal["personalized", "fallback"] = Field(
        description="personalized when any row (Top Picks or Because You Watched) came from the model server"
    )
    fallback_reason: str | None = Field(
        default=None, description="why Top Picks shows popular titles (documented in docs/realtime-api.md)"
    )
    notice: str | None = Field(default=None, description="a plain sentence for the viewer about what the page shows")
    experiment: ExperimentInfo
    prefetch: list[PrefetchHint] = Field(default_factory=list)
