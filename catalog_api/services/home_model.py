"""The home page's model call: cached candidates, one call per key at a time, a time budget.

The candidate cache, its single flight and the circuit-breaker check live here and
only here (the breaker itself is the model-server client's); row building, the page
cache and prefetch signing are other modules' jobs (``services.home``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from catalog_api.circuit_breaker import BreakerState
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

logger = logging.getLogger(__name__)

#: The latest positions that key the candidate cache: a new heartbeat always changes the first.
HISTORY_KEY_LENGTH = 20
#: Time allowed to a background refresh of cached candidates (no page waits on it).
REFRESH_BUDGET_S = 2.0


def history_key(positions: Sequence[LatestPosition]) -> tuple[tuple[object, ...], ...]:
    """The latest positions as a cache key: any new heartbeat changes it."""
    return tuple((p.title_id, p.position_s, p.ts) for p in positions[:HISTORY_KEY_LENGTH])


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
    """Top picks and similar titles: from the candidate cache, else one model-server call within the budget."""
    variant = rules.model_alias(variant)
    if not positions:
        return Personalization(reason="new_profile", variant=variant)
    key = (profile.profile_id, variant, profile.maturity_level, profile.is_kids, profile.country, seed,
           history_key(positions))  # fmt: skip

    def request() -> HomeCandidatesRequest:
        return candidates_request(state, profile, positions, seed, variant)

    cached = state.candidates.lookup(key)
    if cached is not None:
        answer, fresh = cached
        state.metrics.candidate_cache.labels("hit" if fresh else "stale").inc()
        if not fresh and state.candidates.claim_refresh(key):
            task = asyncio.create_task(_refresh_candidates(state, key, request()))
            state.background.add(task)
            task.add_done_callback(state.background.discard)
        return _personalization(answer, variant)
    if state.recommender.breaker.state is BreakerState.OPEN:
        return Personalization(reason="circuit_open", variant=variant)
    call = state.inflight.get(key)
    if call is None:
        call = _start_call(state, key, request)
    try:
        # Shielded: a page that gives up does not cancel the call others share (it has its own timeout).
        answer = await asyncio.wait_for(asyncio.shield(call), timeout=state.options.model_budget_s)
    except (TimeoutError, ModelTimeoutError):
        return Personalization(reason="model_timeout", variant=variant)
    except CircuitOpenError:
        return Personalization(reason="circuit_open", variant=variant)
    except ServiceUnavailableError:
        return Personalization(reason="model_unavailable", variant=variant)
    state.metrics.candidate_cache.labels("miss").inc()
    return _personalization(answer, variant)


def _start_call(
    state: AppState, key: Hashable, request: Callable[[], HomeCandidatesRequest]
) -> asyncio.Task[HomeCandidatesResponse]:
    """One model-server call for ``key``, shared by every page that misses it while it runs.

    The answer goes into the candidate cache when the call ends, also a fallback answer:
    for this viewer the model server would say the same again.
    """
    call = asyncio.create_task(state.recommender.home_candidates(request()))
    state.inflight[key] = call

    def finished(done: asyncio.Task[HomeCandidatesResponse]) -> None:
        state.inflight.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            state.candidates.put(key, done.result())

    call.add_done_callback(finished)
    return call


def _personalization(answer: HomeCandidatesResponse, variant: str) -> Personalization:
    similar = answer.similar if answer.similar is not None and answer.similar.items else None
    if answer.recommend.source != "model":
        reason = answer.recommend.reason or "model_fallback"
        return Personalization(similar=similar, reason=reason, variant=variant, answer=answer)
    return Personalization(picks=answer.recommend, similar=similar, variant=variant, answer=answer)


async def _refresh_candidates(state: AppState, key: Hashable, request: HomeCandidatesRequest) -> None:
    """Ask the model server again for a stale entry, off the request path (one call per key at a time).

    Failures keep the stale answer until it ages out; the circuit breaker still counts them.
    """
    answer: HomeCandidatesResponse | None = None
    try:
        if state.recommender.breaker.state is not BreakerState.OPEN:
            answer = await state.recommender.home_candidates(request, budget_s=REFRESH_BUDGET_S)
    except (TimeoutError, ModelTimeoutError, CircuitOpenError, ServiceUnavailableError) as exc:
        logger.info("refreshing cached candidates failed (%s); the stale answer is kept for now", exc)
    except Exception:
        logger.exception("refreshing cached candidates failed; the stale answer is kept for now")
    finally:
        state.candidates.end_refresh(key, answer)
