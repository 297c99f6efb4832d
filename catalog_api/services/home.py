"""The home page: one request's assembly of the jobs that other modules do.

- the model call, its candidate cache and single flight: ``services.home_model``;
- row building in the layout's order (layouts are data in ``core.rules``): ``services.home_rows``;
- the built-page cache, keyed and checked from one frozen inputs object: ``services.page_cache``;
- prefetch signing: ``services.prefetch``.

This module decides the page's honest status: ``source`` is ``personalized``
when any row came from the model server; ``fallback_reason`` says why Top
Picks shows popular titles; ``notice`` tells the viewer in one sentence (a
profile with no history is told it sees popular titles until it watches
something; a page with personalised rows never says "unavailable"; a page
served from a candidate-cache answer past its lifetime says it is older). Every
served row is logged as an exposure with the model version that chose it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from catalog_api.schemas.home import ExperimentInfo
from catalog_api.services.events import LatestPosition
from catalog_api.services.experiments import PageAssignment
from catalog_api.services.exposures import ExposurePage
from catalog_api.services.home_json import POPULARITY_VERSION, HomePage
from catalog_api.services.home_model import Personalization, history_key, personalize
from catalog_api.services.home_rows import PageBuilder, fill_rows
from catalog_api.services.page_cache import CachedPage, PageInputs
from catalog_api.services.prefetch import prefetch_hints
from catalog_api.services.profile_context import ProfileContext
from catalog_api.services.viewer import watched_titles
from catalog_api.state import AppState
from core import rules
from core.bus import EventKind
from core.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

#: What the viewer is told, per page status (``fallback_reason`` or ``None`` for a fully personal page).
NOTICES: dict[str, str] = {
    "new_profile": "Popular picks until you watch something: your first watch personalises this page.",
    "partly": "Top Picks shows popular titles for now; the rows chosen for you are marked Because You Watched.",
    "unavailable": "Popular picks: personalised recommendations are unavailable right now.",
    "stale": "Picked for you a few minutes ago: fresh recommendations are on their way.",
}


def page_notice(result: Personalization) -> str | None:
    """The sentence a page shows about its status (``None`` when everything on it is personalised and fresh).

    A page built from a candidate-cache entry past its lifetime (the model server
    is slow, failing or behind an open circuit) says so rather than pass old picks
    off as current.
    """
    if result.picks is not None:
        return NOTICES["stale"] if result.stale else None
    if result.reason in ("new_profile", "no_history"):
        return NOTICES["new_profile"]
    return NOTICES["partly"] if result.similar is not None else NOTICES["unavailable"]


async def build_home(
    state: AppState,
    profile: ProfileContext,
    positions: list[LatestPosition],
    device: str,
    request_id: str,
) -> HomePage:
    """The home page of ``profile`` given its latest positions; never raises for model-server trouble."""
    snapshot = state.catalog.snapshot
    popularity = state.popularity.table
    assignment: PageAssignment = state.experiments.assign(
        unit_id=profile.profile_id,
        account_id=profile.account_id,
        country=profile.country,
        device=device,
        is_kids=profile.is_kids,
        is_new=not positions,
    )
    level = rules.viewer_level(profile.maturity_level, profile.is_kids)
    watched = watched_titles(positions, snapshot)
    page = PageBuilder(
        snapshot, level, profile.country, state.options.row_size, hidden=watched.completed, played=watched.played
    )
    # "Because You Watched" the latest visible title, completed or not.
    seed = next((t.title_id for p in positions if (t := page.visible(p.title_id))), None)
    result = await personalize(state, profile, positions, seed, assignment.variant)
    inputs = PageInputs(
        profile_id=profile.profile_id,
        device=device,
        variant=result.variant,
        layout=assignment.layout,
        maturity_level=level,
        kids=profile.is_kids,
        country=profile.country,
        history=history_key(positions),
        answer=result.answer,
        popularity=popularity,
        snapshot=snapshot,
    )
    page_key = inputs.key()
    expiry = state.playback.prefetch_expiry(profile.profile_id)
    cached: CachedPage | None = state.pages.get(page_key)
    if cached is not None and cached.reusable_for(inputs):
        rows, prefetch = cached.rows, cached.prefetch
        if cached.expiry != expiry:
            # Only the URLs' expiry step moved: the rows stand, the hints are signed anew.
            prefetch = prefetch_hints(state, snapshot, rows, profile, expiry)
            state.pages.put(page_key, CachedPage(cached.inputs, expiry, rows, prefetch))
    else:
        rows = fill_rows(page, popularity, positions, seed, result, assignment.layout, state.options.genre_rows)
        prefetch = prefetch_hints(state, snapshot, rows, profile, expiry)
        state.pages.put(page_key, CachedPage(inputs, expiry, rows, prefetch))
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the lake stores milliseconds
    await log_exposures(
        state,
        ExposurePage(
            request_id=request_id,
            ts=now,
            profile_id=profile.profile_id,
            rows=[(row.key, row.model_version, row.title_ids) for row in rows],
            assignments=[(a["experiment_key"], a["variant"]) for a in assignment.assignments],
        ),
    )
    personalized = any(row.model_version != POPULARITY_VERSION for row in rows)
    return HomePage(
        request_id=request_id,
        rows=rows,
        source="personalized" if personalized else "fallback",
        fallback_reason=result.reason,
        notice=page_notice(result),
        experiment=ExperimentInfo(
            assignments=assignment.assignments,
            variant=assignment.variant,
            layout=assignment.layout,
            model_version=result.picks.model_version if result.picks else POPULARITY_VERSION,
        ),
        prefetch=prefetch,
    )


async def log_exposures(state: AppState, page: ExposurePage) -> None:
    """Record what the page showed: on the event stream (acked) when configured, else the journaled log.

    A home page degrades instead of failing: when the stream cannot ack, the page still
    goes out and its exposures take the embedded path (journal, then the lake), so they
    are kept either way. An accepted watch event, by contrast, is refused with 503, because
    the client holds it and can send it again.
    """
    if state.bus is not None and page.request_id:
        try:
            await state.bus.publish_async(EventKind.EXPOSURE, page.request_id, page.to_json().encode())
            return
        except ServiceUnavailableError:
            logger.warning("exposures of page %s: event stream unavailable, journaled locally", page.request_id)
    state.exposures.log_page(page)
