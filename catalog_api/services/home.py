"""The home page: rows, personalization with a time budget, fallback, exposures, prefetch hints.

Rules every page obeys, whatever the source:
- every item passes the profile's maturity level and country licence;
- no title appears twice on a page (rows are filled in layout order);
- the model server gets one time budget for all its calls; when it is down,
  slow, the circuit is open, or the profile has no history, rows come from
  popularity and ``source`` says ``fallback``;
- every served item is logged as an exposure with the model version and the
  experiment variant that chose it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from catalog_api.circuit_breaker import BreakerState
from catalog_api.playback.service import Viewer
from catalog_api.recommender_client import CircuitOpenError, ModelTimeoutError
from catalog_api.schemas.home import ExperimentInfo, PrefetchHint
from catalog_api.services.affinity import genre_affinity
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from catalog_api.services.events import ContinueEntry, LatestPosition, continue_watching
from catalog_api.services.experiments import PageAssignment
from catalog_api.services.exposures import ExposurePage
from catalog_api.services.home_json import HomePage, PageRow, item_fragments, item_json, row_item
from catalog_api.services.popularity import PopularityTable
from catalog_api.services.profile_context import ProfileContext
from catalog_api.state import AppState
from core.errors import MarqueeError, ServiceUnavailableError
from serving.contract import (
    MAX_K,
    HomeCandidatesRequest,
    HomeCandidatesResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarRequest,
    SimilarResponse,
)

logger = logging.getLogger(__name__)

POPULARITY_VERSION = "popularity"
#: The latest positions that key the candidate cache: a new heartbeat always changes the first.
HISTORY_KEY_LENGTH = 20
#: Time allowed to a background refresh of cached candidates (no page waits on it).
REFRESH_BUDGET_S = 2.0


@dataclass
class PageBuilder:
    """Fills rows in order, enforcing the visibility filter and the no-duplicates rule."""

    snapshot: CatalogSnapshot
    maturity_level: int
    country: str
    row_size: int
    used: set[str] = field(default_factory=set)
    rows: list[PageRow] = field(default_factory=list)

    def visible(self, title_id: str) -> CatalogTitle | None:
        """The title if the profile may see it here (ids of episodes resolve to their series)."""
        title = self.snapshot.resolve(title_id)
        if title is None or not title.visible_to(self.maturity_level, self.country):
            return None
        return title

    def add(self, key: str, name: str, title_ids: Iterable[str], *, visible: bool = False) -> PageRow | None:
        """Add a row of the first ``row_size`` visible, unused titles; rows left empty are dropped.

        ``visible=True`` says the ids are catalog titles already filtered for this audience
        (``PopularityTable.for_audience``); ids from the model server are always checked.
        """
        limit, used, snapshot = self.row_size, self.used, self.snapshot
        titles, fragments = snapshot.titles, item_fragments(snapshot)
        row = PageRow(key, name)
        for title_id in title_ids:
            title = titles[title_id] if visible else self.visible(title_id)
            if title is None or title.title_id in used:
                continue
            used.add(title.title_id)
            row.title_ids.append(title.title_id)
            row.items.append(fragments.get(title.title_id) or item_json(snapshot, title))
            if len(row.items) >= limit:
                break
        if not row.items:
            return None
        self.rows.append(row)
        return row

    def add_continue(self, entries: list[ContinueEntry]) -> None:
        """Continue Watching: the series (or movie) with the episode and position to resume."""
        row = PageRow("continue_watching", "Continue Watching")
        for entry in entries:
            title = self.visible(entry.title_id)
            if title is None or title.title_id in self.used:
                continue
            self.used.add(title.title_id)
            episode_id = entry.title_id if entry.series_id else None
            row.title_ids.append(title.title_id)
            row.items.append(row_item(title, episode_id, entry.position_s).model_dump_json().encode())
            row.play_ids.append(episode_id or title.title_id)
            if len(row.items) >= self.row_size:
                break
        if row.items:
            self.rows.append(row)


def history_key(positions: list[LatestPosition]) -> tuple[tuple[object, ...], ...]:
    """The latest positions as a cache key: any new heartbeat changes it."""
    return tuple((p.title_id, p.position_s, p.ts) for p in positions[:HISTORY_KEY_LENGTH])


@dataclass(frozen=True)
class Personalization:
    """What the model server said (or why it said nothing)."""

    picks: RecommendResponse | None = None
    similar: SimilarResponse | None = None
    reason: str | None = None


async def personalize(
    state: AppState,
    profile: ProfileContext,
    positions: list[LatestPosition],
    watched: list[str],
    seed: str | None,
    variant: str,
) -> Personalization:
    """Top picks and similar titles: from the candidate cache, else one model-server call within the budget."""
    if not watched:
        return Personalization(reason="new_profile")
    key = (profile.profile_id, variant, profile.maturity_level, profile.country, seed, history_key(positions))
    request = _candidates_request(state, profile, watched, seed, variant)
    cached = state.candidates.lookup(key)
    if cached is not None:
        answer, fresh = cached
        state.metrics.candidate_cache.labels("hit" if fresh else "stale").inc()
        if not fresh and state.candidates.claim_refresh(key):
            task = asyncio.create_task(_refresh_candidates(state, key, request))
            state.background.add(task)
            task.add_done_callback(state.background.discard)
        return _personalization(answer)
    if state.recommender.breaker.state is BreakerState.OPEN:
        return Personalization(reason="circuit_open")
    call = state.inflight.get(key)
    if call is None:
        call = _start_call(state, key, request)
    try:
        # Shielded: a page that gives up does not cancel the call others share (it has its own timeout).
        answer = await asyncio.wait_for(asyncio.shield(call), timeout=state.options.model_budget_s)
    except (TimeoutError, ModelTimeoutError):
        return Personalization(reason="model_timeout")
    except CircuitOpenError:
        return Personalization(reason="circuit_open")
    except ServiceUnavailableError:
        return Personalization(reason="model_unavailable")
    state.metrics.candidate_cache.labels("miss").inc()
    return _personalization(answer)


def _start_call(state: AppState, key: Hashable, request: HomeCandidatesRequest) -> asyncio.Task[HomeCandidatesResponse]:
    """One model-server call for ``key``, shared by every page that misses it while it runs.

    The answer goes into the candidate cache when the call ends, also a fallback answer:
    for this history the model server would say the same again.
    """
    call = asyncio.create_task(state.recommender.home_candidates(request))
    state.inflight[key] = call

    def finished(done: asyncio.Task[HomeCandidatesResponse]) -> None:
        state.inflight.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            state.candidates.put(key, done.result())

    call.add_done_callback(finished)
    return call


def _personalization(answer: HomeCandidatesResponse) -> Personalization:
    if answer.recommend.source != "model":
        return Personalization(reason="model_fallback")
    return Personalization(picks=answer.recommend, similar=answer.similar)


def _candidates_request(
    state: AppState, profile: ProfileContext, watched: list[str], seed: str | None, variant: str
) -> HomeCandidatesRequest:
    k = min(state.options.row_size * 3, MAX_K)
    return HomeCandidatesRequest(
        recommend=RecommendRequest(
            profile_id=profile.profile_id,
            k=k,
            exclude=watched[:1000],
            variant=variant,  # type: ignore[arg-type]
            maturity_level=profile.maturity_level,
            country=profile.country,
        ),
        similar=SimilarRequest(title_id=seed, k=k) if seed is not None else None,
    )


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


async def build_home(
    state: AppState,
    profile: ProfileContext,
    positions: list[LatestPosition],
    device: str,
    request_id: str,
) -> HomePage:
    """The home page of ``profile`` given its latest positions; never raises for model-server trouble."""
    snapshot = state.catalog.snapshot
    popularity: PopularityTable = state.popularity.table
    watched_titles = list(dict.fromkeys(t.title_id for p in positions if (t := snapshot.resolve(p.title_id))))
    assignment: PageAssignment = state.experiments.assign(
        unit_id=profile.profile_id,
        account_id=profile.account_id,
        country=profile.country,
        device=device,
        is_kids=profile.is_kids,
        is_new=not positions,
    )
    page = PageBuilder(snapshot, profile.maturity_level, profile.country, state.options.row_size)
    seed = next((t for t in watched_titles if page.visible(t)), None)
    result = await personalize(state, profile, positions, watched_titles, seed, assignment.variant)
    personalized = result.picks is not None
    model_version = result.picks.model_version if result.picks else POPULARITY_VERSION
    page_key = (profile.profile_id, device, assignment.variant, assignment.layout, profile.maturity_level,
                profile.country, history_key(positions))  # fmt: skip
    inputs = (result.picks, result.similar, popularity, snapshot)
    expiry = state.playback.prefetch_expiry(profile.profile_id)
    cached: CachedPage | None = state.pages.get(page_key)
    if cached is not None and cached.built_from(inputs):
        rows, prefetch = cached.rows, cached.prefetch
        if cached.expiry != expiry:
            # Only the URLs' expiry step moved: the rows stand, the hints are signed anew.
            prefetch = _prefetch(state, snapshot, rows, profile, expiry)
            state.pages.put(page_key, CachedPage(inputs, expiry, rows, prefetch))
    else:
        rows = _fill_rows(state, page, popularity, profile, positions, watched_titles, seed, result, assignment.layout)
        prefetch = _prefetch(state, snapshot, rows, profile, expiry)
        state.pages.put(page_key, CachedPage(inputs, expiry, rows, prefetch))
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the lake stores milliseconds
    state.exposures.log_page(
        ExposurePage(
            request_id=request_id,
            ts=now,
            profile_id=profile.profile_id,
            rows=[(row.key, _row_version(row.key, model_version), row.title_ids) for row in rows],
            assignments=[(a["experiment_key"], a["variant"]) for a in assignment.assignments],
        )
    )
    return HomePage(
        request_id=request_id,
        rows=rows,
        source="personalized" if personalized else "fallback",
        fallback_reason=result.reason,
        experiment=ExperimentInfo(
            assignments=assignment.assignments,
            variant=assignment.variant,
            layout=assignment.layout,
            model_version=model_version,
        ),
        prefetch=prefetch,
    )


@dataclass(frozen=True)
class CachedPage:
    """Rows and prefetch hints built for one profile's page, with the inputs they were built from.

    The cache key holds the profile, device, variant, layout, filters and latest
    positions; the inputs held here are compared by identity: the model server's
    answer (a new object after every call or refresh), the popularity table and
    the catalog snapshot (new objects when recomputed), and the prefetch URLs'
    expiry step. A new input rebuilds the rows, a new expiry step only re-signs the
    hints, so a cached page is always the page that would be built now; only its
    request id, time and exposures are new.
    """

    inputs: tuple[object, ...]
    expiry: int
    rows: list[PageRow]
    prefetch: list[PrefetchHint]

    def built_from(self, inputs: tuple[object, ...]) -> bool:
        """Whether ``inputs`` are the very objects this page's rows were built from."""
        return len(inputs) == len(self.inputs) and all(a is b for a, b in zip(inputs, self.inputs, strict=True))


def _fill_rows(
    state: AppState,
    page: PageBuilder,
    popularity: PopularityTable,
    profile: ProfileContext,
    positions: list[LatestPosition],
    watched_titles: list[str],
    seed: str | None,
    result: Personalization,
    layout: str,
) -> list[PageRow]:
    """The page's rows in layout order."""
    # The table the page's cache entry records (``CachedPage.inputs``), not a fresher one read again.
    snapshot = page.snapshot
    watched_set = set(watched_titles)
    audience = popularity.for_audience(snapshot, profile.maturity_level, profile.country)
    affinity = genre_affinity(positions, snapshot)
    order = {genre: i for i, genre in enumerate(popularity.genre_order)}
    genres = sorted(popularity.genre_order, key=lambda g: (-affinity.get(g, 0.0), order[g]))

    def top_picks() -> None:
        if result.picks is not None:
            page.add("top_picks", "Top Picks for You", (i.title_id for i in result.picks.items))
        else:
            unwatched = (t for t in audience.popular if t not in watched_set)
            page.add("top_picks", "Top Picks for You", unwatched, visible=True)

    def because() -> None:
        if seed is None:
            return
        name = f"Because You Watched {snapshot.titles[seed].title}"
        if result.similar is not None:
            page.add(f"because_you_watched:{seed}", name, (i.title_id for i in result.similar.items))
        else:
            # Fallback: the most popular titles sharing the seed's genres.
            seed_genres = set(snapshot.titles[seed].genres)
            ranked = (
                t
                for t in audience.popular
                if t not in watched_set and not seed_genres.isdisjoint(snapshot.titles[t].genres)
            )
            page.add(f"because_you_watched:{seed}", name, ranked, visible=True)

    def trending() -> None:
        page.add("trending", "Trending Now", (t for t in audience.trending if t not in watched_set), visible=True)

    def standard_rows(with_trending: bool = True) -> None:
        top_picks()
        because()
        if with_trending:
            trending()
        page.add("new_releases", "New Releases", audience.newest, visible=True)

    def genre_rows() -> None:
        added = 0
        for genre in genres:
            if added >= state.options.genre_rows:
                break
            unwatched = (t for t in audience.by_genre.get(genre, []) if t not in watched_set)
            row = page.add(f"genre:{genre}", genre, unwatched, visible=True)
            added += row is not None

    page.add_continue(continue_watching(positions, snapshot))
    if layout == "genre_first":
        genre_rows()
        standard_rows()
    elif layout == "trending_first":
        trending()
        standard_rows(with_trending=False)
        genre_rows()
    else:
        standard_rows()
        genre_rows()
    return page.rows


def _row_version(row_key: str, model_version: str) -> str:
    """The model version that chose a row: the model for picks and similar titles, else popularity."""
    return model_version if row_key == "top_picks" or row_key.startswith("because_you_watched") else POPULARITY_VERSION


def _prefetch(
    state: AppState, snapshot: CatalogSnapshot, rows: list[PageRow], profile: ProfileContext, expiry: int
) -> list[PrefetchHint]:
    """First segments of the titles the profile is most likely to play: what it is watching, then top picks.

    Signed with the ``expiry`` the page's cache entry records, so a cached page's URLs are the ones it says.
    """
    likely = (row for row in rows if row.key in ("continue_watching", "top_picks"))
    ordered = [play_id for row in likely for play_id in row.play_ids or row.title_ids]
    viewer = Viewer(profile.profile_id, profile.maturity_level, profile.country, profile.language, profile.plan)
    hints = []
    for title_id in ordered[: state.options.prefetch_titles]:
        try:
            quality, urls = state.playback.prefetch_urls(snapshot, title_id, viewer, expires=expiry)
        except MarqueeError:
            continue
        hints.append(PrefetchHint(title_id=title_id, quality=quality, urls=urls))
    return hints
