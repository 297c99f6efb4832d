"""Request and response models of the model server, shared with the API.

Framework-free on purpose (pydantic only): ``catalog_api`` imports this module
to talk to ``serving`` over HTTP without importing BentoML, torch or Feast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 100

Variant = Literal["champion", "challenger"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Body):
    """Ask for ``k`` titles for one profile, after business filters."""

    profile_id: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=MAX_K, description=f"number of titles, 1..{MAX_K}")
    exclude: list[str] = Field(default_factory=list, max_length=1000)
    variant: Variant = "champion"
    maturity_level: int | None = Field(default=None, ge=0, le=3, description="override the profile's level")
    country: str | None = Field(default=None, min_length=2, max_length=2)


class ScoredTitle(_Body):
    """One recommended title with its score (higher is better)."""

    title_id: str
    score: float


class RecommendResponse(_Body):
    """Ranked titles and where they came from."""

    items: list[ScoredTitle]
    model_version: str
    source: Literal["model", "fallback"]


class BatchRecommendRequest(_Body):
    """Several recommend requests answered in one call."""

    requests: list[RecommendRequest] = Field(min_length=1, max_length=256)


class BatchRecommendResponse(_Body):
    """Answers in the order of the requests."""

    responses: list[RecommendResponse]


class RankRequest(_Body):
    """Score given titles for one profile (e.g. search results to re-rank)."""

    profile_id: str = Field(min_length=1, max_length=128)
    title_ids: list[str] = Field(min_length=1, max_length=1000)
    variant: Variant = "champion"


class RankResponse(_Body):
    """The given titles, best first."""

    items: list[ScoredTitle]
    model_version: str
    source: Literal["model", "fallback"]


class SimilarRequest(_Body):
    """Titles similar to one title ("Because you watched X")."""

    title_id: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=MAX_K)


class SimilarResponse(_Body):
    """Similar titles, most similar first."""

    items: list[ScoredTitle]
    model_version: str


class HomeCandidatesRequest(_Body):
    """What one home page needs from the model server, asked in one round trip.

    A page wants top picks and "Because you watched X"; two HTTP calls per page
    double the model server's per-request overhead (framework, parsing), which
    on a small machine is most of its cost.
    """

    recommend: RecommendRequest
    similar: SimilarRequest | None = None


class HomeCandidatesResponse(_Body):
    """Top picks, and the similar titles when asked for and the seed title is known (else ``None``)."""

    recommend: RecommendResponse
    similar: SimilarResponse | None = None
