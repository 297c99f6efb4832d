"""The FastAPI application factory: ``create_app(settings)``.

Nothing is built at import: the engine, the caches and the clients are made
here from the settings passed in, so tests and benchmarks can run several
independent apps in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from catalog_api.api.errors import document_error_responses, install_error_handlers
from catalog_api.api.observability import Metrics, ObservabilityMiddleware
from catalog_api.api.routes import (
    account,
    auth,
    events,
    experiments,
    health,
    home,
    playback,
    playback_sessions,
    profiles,
    search,
    titles,
)
from catalog_api.bus_popularity import PopularityRefresh, popularity_spec
from catalog_api.bus_publisher import EventPublisher
from catalog_api.candidate_cache import TtlCache
from catalog_api.db.engine import make_engine, make_session_factory, migrate, session_scope
from catalog_api.export import export_events_to_lake, export_playback_reports_to_lake
from catalog_api.memory_trace import trace_memory, trace_target
from catalog_api.options import ApiOptions
from catalog_api.playback.service import PlaybackService
from catalog_api.process_lock import LeaderLock
from catalog_api.recommender_client import ModelServerBreaker, RecommenderClient
from catalog_api.security.boundary import BoundaryMiddleware
from catalog_api.security.headers import SecurityHeadersMiddleware
from catalog_api.security.proxies import parse_networks
from catalog_api.security.rate_limit import LOGIN_BACKOFF, LimitStore, LoginGuard, RateLimiter
from catalog_api.security.tokens import TokenIssuer
from catalog_api.services.experiments import ExperimentBridge
from catalog_api.services.exposures import ExposureLog
from catalog_api.services.home_model import candidate_slot
from catalog_api.services.page_cache import PageInputs
from catalog_api.services.popularity import PopularityService
from catalog_api.state import AppState, CatalogHolder
from catalog_api.sync import catalog_is_empty, sync_catalog_from_lake
from catalog_api.web import mount_web
from core.bus import Topology, run_consumer_forever
from core.lake import Lake
from core.logs import configure_logging
from core.memory import start_releasing_free_memory, tune_malloc
from core.settings import Settings
from experiments.definitions import DEFAULT_DIR
from serving.contract import HomeCandidatesResponse

logger = logging.getLogger(__name__)

EXPOSURE_FLUSH_S = 30.0


def build_state(
    settings: Settings,
    options: ApiOptions,
    *,
    db_schema: str | None = None,
) -> AppState:
    """Build the process state: migrate the database, load the catalog, make the clients."""
    settings.check_production_secrets()
    settings.workspace.ensure()
    engine = make_engine(settings.database, schema=db_schema)
    migrate(engine)
    sessions = make_session_factory(engine)
    lake = Lake.from_settings(settings)
    if options.sync_catalog:
        with session_scope(sessions) as session:
            if catalog_is_empty(session) and lake.exists("titles"):
                sync_catalog_from_lake(session, lake)
    catalog = CatalogHolder(sessions, use_postgres=engine.dialect.name == "postgresql")
    catalog.reload()
    popularity = PopularityService(lake, sessions, lambda: catalog.snapshot, options.popularity_refresh_s)
    popularity.refresh()
    # A cached page is checked against its inputs by identity on every use (``CachedPage``), so it may
    # live as long as the answer it was built from can be served; the lifetime only bounds memory.
    page_lifetime_s = options.candidate_ttl_s and options.candidate_ttl_s + options.candidate_stale_s
    breaker = ModelServerBreaker(options.breaker_failures, options.breaker_cooldown_s)
    # One entry per profile and filter set (slots: a newer history replaces the older entry), so the
    # bounds are reached only by that many profiles active within an entry's life (docs/reliability.md#memory).
    candidates: TtlCache[HomeCandidatesResponse] = TtlCache(
        options.candidate_ttl_s,
        max_entries=options.candidate_cache_entries,
        stale_s=options.candidate_stale_s,
        slot=candidate_slot,
    )
    # Login limits are shared by every worker and replica (Redis) when configured; the per-account
    # request limit stays in process memory (it runs on every request; a round trip would cost more).
    shared_limits = LimitStore(settings.rate_limit_url)
    return AppState(
        settings=settings,
        options=options,
        engine=engine,
        sessions=sessions,
        lake=lake,
        catalog=catalog,
        popularity=popularity,
        recommender=RecommenderClient(settings.serving_url, options.model_budget_s, breaker, candidates),
        pages=TtlCache(page_lifetime_s, max_entries=options.page_cache_entries, slot=PageInputs.slot),
        playback=PlaybackService.from_settings(settings, options),
        exposures=ExposureLog(lake, journal_dir=settings.workspace.home / "journal"),
        experiments=ExperimentBridge(options.experiments_dir or settings.experiments_dir or DEFAULT_DIR),
        tokens=TokenIssuer(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience),
        client_limiter=RateLimiter(
            options.client_limit, options.login_window_s, "sign-ups and logins from this address", shared_limits
        ),
        account_limiter=RateLimiter(options.account_limit, options.account_window_s, "requests for this account"),
        metrics=Metrics(),
        login_guard=LoginGuard(shared_limits, ((options.login_limit, int(options.login_window_s)), *LOGIN_BACKOFF[1:])),
        trusted_proxies=parse_networks(settings.trusted_proxies),
        bus=EventPublisher(settings.event_bus, Topology(settings.event_bus_prefix)) if settings.event_bus else None,
    )


async def _flush_exposures_periodically(state: AppState) -> None:
    while True:
        await asyncio.sleep(EXPOSURE_FLUSH_S)
        await asyncio.to_thread(state.exposures.flush)


def export_events_now(state: AppState) -> int:
    """Export new watch events (then QoE reports) to the lake; failures are logged, retried next time.

    Returns the number of watch events exported.
    """
    try:
        with state.sessions() as session:
            exported = export_events_to_lake(session, state.lake)
    except Exception:
        logger.exception("exporting watch events to the lake failed; will retry")
        return 0
    try:
        with state.sessions() as session:
            export_playback_reports_to_lake(session, state.lake)
    except Exception:
        logger.exception("exporting playback reports to the lake failed; will retry")
    return exported


def maintain_lake_now(state: AppState) -> None:
    """Compact and vacuum the lake's tables (each export added a small file); failures are logged."""
    try:
        for report in state.lake.maintain():
            logger.info(
                "lake upkeep: %s %d → %d files, %d old files deleted",
                report.name,
                report.files_before,
                report.files_after,
                report.files_deleted,
            )
    except Exception:
        logger.exception("compacting the lake failed; will retry")


async def _export_events_periodically(state: AppState, interval_s: float) -> None:
    # With several workers on one workspace, one of them exports (whoever holds the lock); the
    # exporter also keeps the lake's tables compact, every ``compact_interval_s``.
    leader = LeaderLock(state.settings.workspace.home / "run" / "api-export.lock")
    compact_s = state.options.compact_interval_s
    compacted_at = time.monotonic()
    try:
        while True:
            await asyncio.sleep(interval_s)
            if leader.try_acquire():
                await asyncio.to_thread(export_events_now, state)
                if compact_s > 0 and time.monotonic() - compacted_at >= compact_s:
                    await asyncio.to_thread(maintain_lake_now, state)
                    compacted_at = time.monotonic()
    finally:
        leader.release()


def create_app(
    settings: Settings,
    options: ApiOptions | None = None,
    *,
    db_schema: str | None = None,
) -> FastAPI:
    """The catalog API for ``settings``.

    Args:
        settings: platform settings (database URL, secrets, model-server address).
        options: API tunables; defaults suit production.
        db_schema: PostgreSQL schema to use (tests isolate runs this way).
    """
    options = options or ApiOptions()
    state = build_state(settings, options, db_schema=db_schema)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_flush_exposures_periodically(state))]
        start_releasing_free_memory()  # RSS flat under a long soak (core.memory)
        # With the event bus the stream's consumers feed the lake; the file-locked exporter would only
        # coordinate the processes of one host (docs/event-bus.md).
        if options.export_interval_s > 0 and state.bus is None:
            tasks.append(asyncio.create_task(_export_events_periodically(state, options.export_interval_s)))
        stop_consumers = asyncio.Event()
        if state.bus is not None:
            bus, refresh = state.bus, PopularityRefresh(state.popularity)
            consumer = run_consumer_forever(bus.url, bus.topology, popularity_spec(), refresh, stop_consumers)
            tasks.append(asyncio.create_task(consumer))
        if (trace := trace_target()) is not None:
            tasks.append(asyncio.create_task(trace_memory(trace, state.bounded_sizes)))
        try:
            yield
        finally:
            stop_consumers.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(state.exposures.close)
            if state.bus is not None:
                await asyncio.to_thread(state.bus.close)
            await state.recommender.aclose()
            state.engine.dispose()

    app = FastAPI(
        title="Marquee catalog API",
        version="1.0.0",
        description="Auth, profiles, catalog, search, watch events, home rows and playback manifests.",
        lifespan=lifespan,
    )
    app.state.marquee = state
    install_error_handlers(app)
    # Matched in this order, one regular expression per route: the hot paths (home rows, watch events,
    # manifests) first. Home sat behind ten routers and took 32 us to match; no two paths overlap.
    routers = (home, events, playback, playback_sessions, titles, search, profiles, auth, account, experiments, health)
    for module in routers:
        app.include_router(module.router)
    mount_web(app)  # the small web page at / (catalog_api/web/static)
    document_error_responses(app)
    app.add_middleware(BoundaryMiddleware)
    app.add_middleware(
        SecurityHeadersMiddleware, edge_origins=lambda: [edge.base_url for edge in state.playback.edges.edges]
    )
    app.add_middleware(ObservabilityMiddleware, metrics=state.metrics)
    return app


#: How long a thread holds the GIL before the event loop may take it back (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.001
#: Environment variable carrying ``ApiOptions`` (as JSON) to worker processes started by uvicorn.
OPTIONS_ENV = "MARQUEE_API_OPTIONS"
#: The ``ApiOptions`` fields a command line may set for worker processes.
WORKER_OPTION_FIELDS = (
    "admin_token",
    "export_interval_s",
    "compact_interval_s",
    "candidate_ttl_s",
    "sync_catalog",
    "row_size",
)


def options_to_environment(options: ApiOptions) -> str:
    """The JSON that ``app_from_environment`` reads back in each worker process."""
    return json.dumps({name: getattr(options, name) for name in WORKER_OPTION_FIELDS})


def app_from_environment() -> FastAPI:
    """The app of one worker process (``uvicorn --factory``), from settings and ``MARQUEE_API_OPTIONS``.

    ``marquee serve api --workers N`` migrates the database and syncs the catalog
    once, then uvicorn starts N processes that each call this.
    """
    tune_malloc()  # before this worker's threads start (core.memory)
    configure_logging()
    raw = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    options = ApiOptions(**{name: raw[name] for name in WORKER_OPTION_FIELDS if name in raw})
    app = create_app(Settings(), options)
    freeze_startup_objects()
    return app


#: The collector's thresholds in a served API worker (CPython's are 700, 10, 10). A home page
#: leaves hundreds of tracked objects in the candidate and page caches (parsed model answers);
#: with the defaults, 3,600 cold pages over 600 profiles ran 358 collections, 172 ms in all,
#: two of them full ones of 20 and 45 ms that every request in flight waited for; with these,
#: 22 collections, 55 ms in all, the longest 23 ms (measured in-process, side by side).
GC_THRESHOLDS = (10_000, 10, 100)


def freeze_startup_objects() -> None:
    """Move everything built at start-up (catalog, search index, popularity) out of the GC's sight.

    A full collection walks every live container; with the catalog and the search
    index in memory that is a pause of tens of milliseconds, landing on whichever
    request triggered it. Start-up objects live as long as the process, so
    ``gc.freeze`` keeps later collections to what requests allocate. For servers
    only: an app built and dropped (tests) would leave its objects frozen. The thresholds
    (:data:`GC_THRESHOLDS`) make collections rarer as the caches fill.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Background threads (exposure flushes, exports, popularity) hand the GIL back to the event
    # loop every millisecond instead of every five, so they cannot hold a request up for long.
    sys.setswitchinterval(SWITCH_INTERVAL_S)


__all__ = ["ApiOptions", "app_from_environment", "build_state", "create_app", "freeze_startup_objects"]
