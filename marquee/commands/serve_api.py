"""`marquee serve api`: the catalog API under uvicorn (port 8000 by default)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)


def register(group: typer.Typer) -> None:
    """Add `api` to the `serve` group."""

    @group.command("api")
    def serve_api(
        port: Annotated[int, typer.Option(help="TCP port to listen on", min=1, max=65535)] = 8000,
        host: Annotated[str, typer.Option(help="address to bind; 0.0.0.0 to accept other machines")] = "127.0.0.1",
        sync_catalog: Annotated[
            bool, typer.Option("--sync-catalog", help="reload the catalog from the lake before serving")
        ] = False,
        export_every: Annotated[
            float, typer.Option(help="export new watch events to the lake every N seconds (0: never)", min=0)
        ] = 60.0,
        compact_every: Annotated[
            float,
            typer.Option(help="the exporter compacts and vacuums the lake's tables every N seconds (0: never)", min=0),
        ] = 3600.0,
        candidate_ttl: Annotated[
            float,
            typer.Option(
                help="reuse a profile's model-server answer for N seconds while its history is unchanged (0: never)",
                min=0,
            ),
        ] = 120.0,
        workers: Annotated[
            int,
            typer.Option(
                help="worker processes (each holds its own caches and rate-limit windows; one exports events)",
                min=1,
            ),
        ] = 1,
        row_size: Annotated[int, typer.Option(help="titles per home row", min=1, max=100)] = 20,
        push_features: Annotated[
            bool,
            typer.Option(
                "--push-features/--no-push-features",
                help="push each accepted watch event to the online feature store (batched, off the request path)",
            ),
        ] = True,
        replicas: Annotated[
            int,
            typer.Option(
                help="API processes behind HAProxy on --port (each with --workers workers; needs "
                "MARQUEE_RATE_LIMIT_URL so login limits are shared; see docs)",
                min=1,
            ),
        ] = 1,
        keep_alive: Annotated[
            int,
            typer.Option(
                help="seconds an idle connection is kept open (behind a balancer: longer than the balancer keeps it)",
                min=1,
            ),
        ] = 5,
    ) -> None:
        """Start the catalog API (auth, profiles, catalog, search, events, home rows, manifests)."""
        import uvicorn

        from catalog_api.app import OPTIONS_ENV, create_app, freeze_startup_objects, options_to_environment
        from catalog_api.db.engine import make_engine, make_session_factory, migrate, session_scope
        from catalog_api.options import ApiOptions
        from catalog_api.sync import catalog_is_empty, sync_catalog_from_lake
        from core.lake import Lake
        from core.logs import configure_logging
        from core.memory import tune_malloc
        from marquee.commands._common import load_settings

        tune_malloc()  # before the API's threads start (core.memory)
        configure_logging(os.environ.get("MARQUEE_LOG_LEVEL", "INFO"))
        settings = load_settings()
        if replicas > 1:
            require_shared_limits(settings, replicas)
        if sync_catalog or workers > 1 or replicas > 1:
            # Once, before any worker starts: workers must not race to migrate or fill the catalog.
            engine = make_engine(settings.database)
            migrate(engine)
            lake = Lake.from_settings(settings)
            with session_scope(make_session_factory(engine)) as session:
                if sync_catalog or (catalog_is_empty(session) and lake.exists("titles")):
                    titles, episodes = sync_catalog_from_lake(session, lake)
                    typer.echo(f"catalog synced from the lake: {titles} titles, {episodes} episodes")
            engine.dispose()
        options = ApiOptions(
            admin_token=os.environ.get("MARQUEE_ADMIN_TOKEN") or None,
            export_interval_s=export_every,
            compact_interval_s=compact_every,
            candidate_ttl_s=candidate_ttl,
            row_size=row_size,
        )
        if settings.event_bus:
            # The stream replaces the exporter and the database feed: its consumers run beside the API.
            from marquee.commands.consume import ConsumerName, start_in_background

            names = [ConsumerName.LAKE_WRITER] + ([ConsumerName.ONLINE_PUSH] if push_features else [])
            start_in_background(settings, names)
            typer.echo(f"event stream {settings.event_bus}: consumers {', '.join(n.value for n in names)}")
        elif push_features:
            _start_online_push(settings)
        if replicas > 1:
            # The replicas neither migrate nor push features: this process did both, once.
            options_line = ["--workers", str(workers), "--export-every", str(export_every)]
            options_line += ["--candidate-ttl", str(candidate_ttl), "--row-size", str(row_size)]
            _serve_replicas(settings, replicas, port, host, [*options_line, "--no-push-features"])
            return
        where = f"http://{host}:{port} (docs at /docs, model server {settings.serving_url})"
        if workers > 1:
            os.environ[OPTIONS_ENV] = options_to_environment(options)
            typer.echo(f"catalog API on {where}, {workers} worker processes")
            uvicorn.run(
                "catalog_api.app:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                access_log=False,
                log_config=None,
                proxy_headers=False,  # X-Forwarded-For is judged by the app (MARQUEE_TRUSTED_PROXIES)
                timeout_keep_alive=keep_alive,
            )
            return
        app = create_app(settings, options)
        freeze_startup_objects()
        typer.echo(f"catalog API on {where}")
        # proxy_headers off: X-Forwarded-For is judged by the app against MARQUEE_TRUSTED_PROXIES.
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            proxy_headers=False,
            timeout_keep_alive=keep_alive,
        )


#: Seconds an API replica keeps an idle connection from the balancer: longer than HAProxy keeps it idle
#: (it purges idle server connections every 5 s), so the balancer never sends a request on a connection
#: the replica is closing at that moment (a POST that cannot be replayed would get a 502).
REPLICA_KEEP_ALIVE_S = 65


def require_shared_limits(settings: Settings, replicas: int) -> None:
    """Refuse to start several API replicas whose login limits would each live in their own memory.

    Raises:
        ConfigurationError: ``MARQUEE_RATE_LIMIT_URL`` is not set.
    """
    from core.errors import ConfigurationError

    if not settings.rate_limit_url or settings.rate_limit_url.startswith("memory:"):
        raise ConfigurationError(
            f"--replicas {replicas} needs login limits shared by every replica: set "
            "MARQUEE_RATE_LIMIT_URL=redis://host:6379/0 (without it each replica counts failed logins on its "
            f"own, so {replicas} replicas would allow {replicas}x the tries)"
        )


def _serve_replicas(settings: Settings, count: int, port: int, host: str, options: list[str]) -> None:
    """``count`` API processes (each ``marquee serve api OPTIONS`` on a loopback port) behind HAProxy."""
    from marquee.balancer import API_TIER
    from marquee.commands.demo_processes import marquee_command
    from marquee.commands.replicas import REPLICA_HOST, ReplicaSet, serve_replicated

    def command(replica_port: int) -> list[str]:
        return marquee_command(
            "serve", "api", "--port", str(replica_port), "--host", REPLICA_HOST,
            "--keep-alive", str(REPLICA_KEEP_ALIVE_S), *options,
        )  # fmt: skip

    # The replicas see every request coming from the balancer on loopback: they believe its
    # X-Forwarded-For (and still only that of the proxies configured before it).
    proxies = ",".join(p for p in (settings.trusted_proxies, REPLICA_HOST) if p)
    env = {"MARQUEE_HOME": str(settings.workspace.home), "MARQUEE_TRUSTED_PROXIES": proxies}
    notes = ["login limits shared through MARQUEE_RATE_LIMIT_URL; token revocations live in the database"]
    if settings.database.startswith("sqlite"):
        notes.append(
            "the database is the workspace's SQLite file, which only replicas on this host share; "
            "set MARQUEE_DATABASE_URL=postgresql+psycopg://... for replicas on several hosts"
        )
    tier = ReplicaSet(API_TIER, count, host, port, command, env, settings.workspace.run_dir)
    serve_replicated(tier, notes)


def _start_online_push(settings: Settings) -> None:
    """Run the online-feature push beside the API, in this (the supervising) process.

    The API may not import Feast (import contract), so the composition root wires
    the API's event feed to ``features.push``: one thread whatever the number of
    workers, reading accepted events from the database and pushing them in batches.
    Without built feature tables there is nothing to keep fresh, and the API runs without it.
    """
    from catalog_api.db.engine import make_engine, make_session_factory, migrate
    from catalog_api.event_feed import EventFeed
    from core.lake import Lake
    from features.pipelines import read_manifest
    from features.push import OnlinePushLoop
    from features.store import open_store

    try:
        read_manifest(settings.workspace.feast_dir)
    except Exception:
        logger.info("no feature tables built yet (marquee features build): online push not started")
        return
    try:
        engine = make_engine(settings.database)
        migrate(engine)
        feed = EventFeed(make_session_factory(engine))
        store = open_store(settings)
        OnlinePushLoop(store, Lake.from_settings(settings), feed.after, feed.latest_seq()).start()
        typer.echo(f"online feature push on ({settings.feast_online})")
    except Exception:
        logger.exception("the online feature push could not start; the API runs without it")
