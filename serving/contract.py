"""Request and response models of the model server, shared with the API.

Framework-free on purpose (pydantic only): ``catalog_api`` imports this module
to talk to ``serving`` over HTTP without importing BentoML, torch or Feast.

The viewer travels in every request
-----------------------------------
The model server keeps no copy of profiles or histories: every call that is
about a viewer (``home_candidates``, ``recommend``, ``recommend_batch``,
``similar``, ``rank``) carries a required :class:`ViewerContext`, and the model
server scores from it alone. A profile created a second ago, or a watch posted
a second ago, counts on the very next call; nothing waits for the lake.

What the API fills in (the API owns these facts; ``core.rules`` defines the rules):

* ``profile_id``: the profile asking (used for logs and the ranker's request-time
  features, never to look anything up).
* ``history``: the profile's latest watches, **oldest first**, at most
  ``MAX_HISTORY`` (keep the newest), one entry per title at its latest watch
  (onboarding "titles I like" count as watches). ``progress`` is the share of the
  title watched (0..1), ``completed`` is ``core.rules``' completed rule applied by
  the API (the model server never re-derives it from ``progress``).
* ``maturity_level`` (0..3, ``core.domain.MaturityLevel``) and ``kids``: the
  profile's ceiling; serving filters with ``core.rules``' visibility rule.
* ``country`` (ISO 3166 alpha-2, ``None`` = unknown: only titles licensed
  everywhere pass) and ``language`` (BCP-47-ish, informational for now).
* ``exclude``: titles never to return (e.g. on screen already). Completed titles
  older than the history window belong here too, so they stay filtered.

``variant`` stays on the request (champion or challenger), and ``similar``
honours it. An answer cache, on either side, is keyed by
:meth:`ViewerContext.digest` plus the rest of the request.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core import rules

MAX_K = 100
#: Most watches one context carries (``core.rules.request_history``: models look at the latest ones only).
MAX_HISTORY = rules.MAX_HISTORY
#: Most ids in one exclude list.
MAX_EXCLUDE = 1000

#: A model variant (registry alias) a request may ask for: ``core.rules`` lists them.
Variant = rules.Variant


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WatchedTitle(_Body):
    """One title in a viewer's history: what, when, how far, and whether it counts as completed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title_id: str = Field(min_length=1, max_length=128)
    ts: datetime = Field(description="when it was last watched (ISO 8601)")
    progress: float = Field(default=0.0, ge=0.0, le=1.0, description="share of the title watched, 0..1")
    completed: bool = Field(default=False, description="completed by core.rules' rule, decided by the API")


class ViewerContext(_Body):
    """Everything the model server may know about the viewer, sent with every request."""

    profile_id: str = Field(min_length=1, max_length=128)
    history: list[WatchedTitle] = Field(
        default_factory=list, max_length=MAX_HISTORY, description=f"latest watches, oldest first, ≤ {MAX_HISTORY}"
    )
    maturity_level: int = Field(ge=0, le=3, description="the profile's maturity ceiling (core.domain.MaturityLevel)")
    kids: bool = Field(description="a kids profile")
    country: str | None = Field(default=None, min_length=2, max_length=2, description="None: unknown country")
    language: str | None = Field(default=None, min_length=2, max_length=16)
    exclude: list[str] = Field(default_factory=list, max_length=MAX_EXCLUDE)

    def title_ids(self) -> list[str]:
        """The history's title ids, oldest first."""
        return [w.title_id for w in self.history]

    def completed_ids(self) -> frozenset[str]:
        """Titles the API marked completed."""
        return frozenset(w.title_id for w in self.history if w.completed)

    def digest(self) -> str:
        """A stable hash of the whole context: the key of any answer cache for this viewer."""
        return hashlib.blake2b(self.model_dump_json().encode(), digest_size=16).hexdigest()


class RecommendRequest(_Body):
    """Ask for ``k`` titles for one viewer, after business filters."""

    viewer: ViewerContext
    k: int = Field(default=10, ge=1, le=MAX_K, description=f"number of titles, 1..{MAX_K}")
    variant: Variant = "champion"


class ScoredTitle(_Body):
    """One recommended title with its score (higher is better)."""

    title_id: str
    score: float


class RecommendResponse(_Body):
    """Ranked titles and where they came from."""

    items: list[ScoredTitle]
    model_version: str
    source: Literal["model", "fallback"]
    #: Why the answer is a fallback (``None`` for a model answer), e.g. ``no_history``.
    reason: str | None = None


class BatchRecommendRequest(_Body):
    """Several recommend requests answered in one call (each with its own viewer)."""

    requests: list[RecommendRequest] = Field(min_length=1, max_length=256)


class BatchRecommendResponse(_Body):
    """Answers in the order of the requests."""

    responses: list[RecommendResponse]


class RankRequest(_Body):
    """Score given titles for one viewer (e.g. search results to re-rank)."""

    viewer: ViewerContext
    title_ids: list[str] = Field(min_length=1, max_length=1000)
    variant: Variant = "champion"


class RankResponse(_Body):
    """The given titles, best first."""

    items: list[ScoredTitle]
    model_version: str
    source: Literal["model", "fallback"]


class SimilarRequest(_Body):
    """Titles similar to one title ("Because you watched X"), visible to and not yet completed by the viewer."""

    viewer: ViewerContext
    title_id: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=MAX_K)
    variant: Variant = "champion"


class SimilarResponse(_Body):
    """Similar titles, most similar first."""

    items: list[ScoredTitle]
    model_version: str


class SimilarSeed(_Body):
    """The seed of a page's "Because you watched X" row."""

    title_id: str = Field(min_length=1, max_length=128)
    k: int = Field(default=10, ge=1, le=MAX_K)


class HomeCandidatesRequest(_Body):
    """What one home page needs from the model server, asked in one round trip.

    A page wants top picks and "Because you watched X"; two HTTP calls per page
    double the model server's per-request overhead (framework, parsing), which
    on a small machine is most of its cost. The viewer is sent once for both.
    """

    viewer: ViewerContext
    k: int = Field(default=10, ge=1, le=MAX_K)
    variant: Variant = "champion"
    similar: SimilarSeed | None = None


class HomeCandidatesResponse(_Body):
    """Top picks, and the similar titles when asked for and the seed title is known (else ``None``)."""

    recommend: RecommendResponse
    similar: SimilarResponse | None = None
