"""The home page's model call: the request built from the viewer, its answer read as rows' sources.

The candidate cache, its single flight and the circuit breaker belong to the
model-server client (``catalog_api.recommender_client``); row building, the page
cache and prefetch signing are other modules' jobs (``services.home``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from catalog_api.recommender_client import CircuitOpenError, ModelTimeoutError
from catalog_api.services.events import LatestPosition
from catalog_api.services.profile_context import ProfileContext
from catalog_api.services.viewer import viewer_context
from catalog_api.state import AppState
from core import rules
from core.errors import ServiceUnavailableError
from serving.contract import (
    MAX_K,
    HomeCandidatesRequest,
    HomeCandidatesResponse,
    RecommendResponse,
    SimilarResponse,
    SimilarSeed,
)

#: The latest positions that key the candidate cache: a new heartbeat always changes the first.
HISTORY_KEY_LENGTH = 20


def history_key(positions: Sequence[LatestPosition]) -> tuple[tuple[object, ...], ...]:
    """The latest positions as a cache key: any new heartbeat changes it."""
    return tuple((p.title_id, p.position_s, p.ts) for p in positions[:HISTORY_KEY_LENGTH])


def candidate_slot(key: Hashable) -> Hashable:
    """The candidate-cache slot of a ``personalize`` key: profile, variant and filters, not seed and history.

    A newer history (and the seed it picks) replaces the older answer, which would never be asked for again.
    """
    assert isinstance(key, tuple)
    return key[:5]


@dataclass(frozen=True)
class Personalization:
    """What the model server said (or why it said nothing), with the variant that was asked.

    ``picks`` is set only for a model answer (not the model server's own popularity
    fallback); ``similar`` whenever the model server found titles similar to the seed.
    ``reason`` says why Top Picks is not personalised (see docs/realtime-api.md).
    """

    picks: RecommendResponse | None = None
    similar: SimilarResponse | None = None
    reason: str | None = None
    variant: str = rules.CHAMPION
    #: The answer object the page was built from (compared by identity by the page cache).
    answer: HomeCandidatesResponse | None = None
    #: True when ``answer`` came from the candidate cache past its lifetime (a refresh is under way).
    stale: bool = False


def candidates_request(
    state: AppState, profile: ProfileContext, positions: Sequence[LatestPosition], seed: str | None, variant: str
) -> HomeCandidatesRequest:
    """One ``/home_candidates`` request: the viewer from the database, top picks and the seed's similar titles."""
    k = min(state.options.row_size * 3, MAX_K)
    return HomeCandidatesRequest(
        viewer=viewer_context(profile, positions),
        k=k,
        variant=rules.model_alias(variant),  # type: ignore[arg-type]
        similar=SimilarSeed(title_id=seed, k=k) if seed is not None else None,
    )


async def personalize(
    state: AppState,
    profile: ProfileContext,
    positions: Sequence[LatestPosition],
    seed: str | None,
    variant: str,
) -> Personalization:
    """Top picks and similar titles from the model-server client (its cache, else one call within the budget)."""
    variant = rules.model_alias(variant)
    if not positions:
        return Personalization(reason="new_profile", variant=variant)
    # The first five make the slot (``candidate_slot``).
    key = (profile.profile_id, variant, profile.maturity_level, profile.is_kids, profile.country, seed,
           history_key(positions))  # fmt: skip

    def request() -> HomeCandidatesRequest:
        return candidates_request(state, profile, positions, seed, variant)

    try:
        answer, status = await state.recommender.cached_home_candidates(key, request)
    except ModelTimeoutError:
        return Personalization(reason="model_timeout", variant=variant)
    except CircuitOpenError:
        return Personalization(reason="circuit_open", variant=variant)
    except ServiceUnavailableError:
        return Personalization(reason="model_unavailable", variant=variant)
    state.metrics.candidate_cache.labels(status).inc()
    if answer.recommend.source != "model":
        reason = answer.recommend.reason or "model_fallback"
        similar = answer.similar if answer.similar is not None and answer.similar.items else None
        return Personalization(similar=similar, reason=reason, variant=variant, answer=answer, stale=status == "stale")
    similar = answer.similar if answer.similar is not None and answer.similar.items else None
    return Personalization(
        picks=answer.recommend, similar=similar, variant=variant, answer=answer, stale=status == "stale"
    )
