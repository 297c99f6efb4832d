"""Tunables of the API process that are not platform-wide settings.

``core.settings.Settings`` holds what every process shares (database URL,
secrets, model-server address); these knobs belong to the API alone and are
passed to ``create_app`` explicitly, so tests can shrink windows and budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CdnEdge:
    """One CDN edge: where it is, which regions it serves, whether it is up."""

    name: str
    base_url: str
    regions: tuple[str, ...]


DEFAULT_EDGES = (
    CdnEdge("us-east", "https://us-east.cdn.marquee.example", ("US", "CA", "MX", "BR", "AR")),
    CdnEdge("eu-west", "https://eu-west.cdn.marquee.example", ("GB", "FR", "DE", "ES", "IT", "NL", "IE")),
    CdnEdge("ap-south", "https://ap-south.cdn.marquee.example", ("IN", "JP", "KR", "AU", "SG")),
)


@dataclass(frozen=True)
class ApiOptions:
    """API tunables.

    Attributes:
        login_limit: failed logins allowed per e-mail and client address per ``login_window_s`` (the
            first tier of ``security.rate_limit.LOGIN_BACKOFF``; later tiers allow more per hour and day).
        client_limit: sign-ups plus login attempts allowed per client address per ``login_window_s``
            (higher than ``login_limit``: many households share one address behind NAT).
        account_limit: authenticated requests allowed per account per ``account_window_s``.
        model_budget_s: time budget for model-server calls on a home request.
        candidate_ttl_s: how long a model-server answer is reused for the same profile, variant,
            filters and history (``catalog_api.candidate_cache``); 0 asks the model server every time.
        candidate_stale_s: how long after that an answer may still be served, once, while a
            background call refreshes it (a profile back after a pause gets its page at once).
        candidate_cache_entries: size bound of the candidate cache (one entry per profile, variant
            and filter set; about 63 KiB each, measured: 4,096 entries hold at most ~250 MiB).
        page_cache_entries: size bound of the built-page cache (one entry per profile, device,
            variant and filter set; about 10 KiB each, measured: 8,192 entries hold at most ~80 MiB).
        breaker_failures: consecutive model-server failures that open the circuit.
        breaker_cooldown_s: how long the circuit stays open before one probe is let through.
        popularity_refresh_s: how often popularity and trending are recomputed.
        url_ttl_s: lifetime of signed segment URLs.
        row_size: titles per home row.
        genre_rows: how many genre rows the home page ends with.
        prefetch_titles: how many titles get prefetch hints on the home response.
        admin_token: a static bearer token with admin rights (experiment admin), if set.
        experiments_dir: folder of the experiment store; default ``settings.experiments_dir``, else
            the shipped definitions.
        export_interval_s: export new watch events to the lake this often (0: only on request).
        compact_interval_s: the exporter also compacts and vacuums the lake's tables this often
            (``Lake.maintain``), so each export's small file does not pile up; 0: never.
        sync_catalog: load the catalog from the lake at start-up when the database has none.
        cdn_edges: the CDN edges manifests may point at.
    """

    login_limit: int = 5
    client_limit: int = 100
    login_window_s: float = 60.0
    account_limit: int = 600
    account_window_s: float = 60.0
    model_budget_s: float = 0.15
    candidate_ttl_s: float = 120.0
    candidate_stale_s: float = 600.0
    candidate_cache_entries: int = 4_096
    page_cache_entries: int = 8_192
    breaker_failures: int = 3
    breaker_cooldown_s: float = 10.0
    popularity_refresh_s: float = 300.0
    url_ttl_s: int = 300
    row_size: int = 20
    genre_rows: int = 4
    prefetch_titles: int = 3
    admin_token: str | None = None
    experiments_dir: Path | None = None
    export_interval_s: float = 0.0
    compact_interval_s: float = 3600.0
    sync_catalog: bool = True
    cdn_edges: tuple[CdnEdge, ...] = field(default=DEFAULT_EDGES)
