"""Everything one API process holds: built by ``create_app(settings)``, never at import."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.api.observability import Metrics
from catalog_api.bus_publisher import EventPublisher
from catalog_api.candidate_cache import TtlCache
from catalog_api.options import ApiOptions
from catalog_api.playback.service import PlaybackService
from catalog_api.recommender_client import RecommenderClient
from catalog_api.security.proxies import Network
from catalog_api.security.rate_limit import LimitStore, LoginGuard, RateLimiter
from catalog_api.security.tokens import TokenIssuer
from catalog_api.services.catalog_cache import CatalogSnapshot, load_snapshot
from catalog_api.services.experiments import ExperimentBridge
from catalog_api.services.exposures import ExposureLog
from catalog_api.services.popularity import PopularityService
from catalog_api.services.search import EmbeddedBackend, PostgresBackend, TextBackend
from catalog_api.services.search_index import SearchIndex
from core.lake import Lake
from core.settings import Settings
from serving.contract import HomeCandidatesResponse

logger = logging.getLogger(__name__)


class CatalogHolder:
    """The current catalog snapshot and its search backend, swapped together on reload."""

    def __init__(self, sessions: sessionmaker[Session], use_postgres: bool) -> None:
        self._sessions = sessions
        self._use_postgres = use_postgres
        self._lock = threading.Lock()
        self.snapshot = CatalogSnapshot([], [])
        self.backend: TextBackend = EmbeddedBackend(SearchIndex(self.snapshot))

    def reload(self) -> CatalogSnapshot:
        """Re-read the catalog from the database and rebuild the search index."""
        with self._sessions() as session:
            snapshot = load_snapshot(session)
        backend: TextBackend = (
            PostgresBackend(self._sessions) if self._use_postgres else EmbeddedBackend(SearchIndex(snapshot))
        )
        with self._lock:
            self.snapshot, self.backend = snapshot, backend
        logger.info("catalog loaded: %d titles, search backend %s", len(snapshot), backend.name)
        return snapshot


@dataclass
class AppState:
    """Process-wide services, reachable from routes through ``api.deps``."""

    settings: Settings
    options: ApiOptions
    engine: Engine
    sessions: sessionmaker[Session]
    lake: Lake
    catalog: CatalogHolder
    popularity: PopularityService
    recommender: RecommenderClient
    #: Built home pages (rows and prefetch hints) per profile and inputs (``services.home.CachedPage``).
    pages: TtlCache[Any]
    playback: PlaybackService
    exposures: ExposureLog
    experiments: ExperimentBridge
    tokens: TokenIssuer
    client_limiter: RateLimiter
    account_limiter: RateLimiter
    metrics: Metrics
    #: Backoff of failed logins per (e-mail, address), in the shared limit store.
    login_guard: LoginGuard = field(default_factory=lambda: LoginGuard(LimitStore()))
    #: Reverse proxies whose ``X-Forwarded-For`` is believed (``security.proxies``).
    trusted_proxies: tuple[Network, ...] = ()
    #: The event stream accepted events are published to before their 2xx (``MARQUEE_EVENT_BUS``); None: the
    #: embedded default, the database and the exporter only.
    bus: EventPublisher | None = None

    def bounded_sizes(self) -> dict[str, int]:
        """Entries held by each structure that lives as long as the process (``memory_trace`` reports them)."""
        return {
            "pages": len(self.pages),
            "candidates": len(self.candidates),
            "verified_tokens": self.tokens.remembered(),
            "exposures_buffered": self.exposures.buffered,
        }

    @property
    def candidates(self) -> TtlCache[HomeCandidatesResponse]:
        """The model-server client's candidate cache (the client owns it)."""
        return self.recommender.candidates
