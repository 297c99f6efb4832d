"""`marquee demo`: the whole loop on the embedded defaults, as a list of named steps.

data (the Netflix titles catalog + synthetic viewing) -> lake -> Feast features (apply, materialize) ->
training (candidates + ranker, MLflow runs, registry, promotion) -> serving
(BentoML model server, the FastAPI API, the MLflow UI). Each step is a small
function of a shared :class:`DemoContext`; the servers stay up until Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings import Settings
from marquee.commands._common import load_settings
from marquee.commands.demo_processes import ManagedProcess, marquee_command, mlflow_command
from marquee.commands.media import demo_edge_command, demo_media_step

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DemoContext:
    """What the steps share: settings, the demo's options and what earlier steps produced."""

    settings: Settings
    scale: float
    seed: int
    results: dict[str, Any] = field(default_factory=dict)
    serve: bool = True
    model_port: int = 3000
    api_port: int = 8000
    mlflow_port: int = 5000
    processes: list[ManagedProcess] = field(default_factory=list)


@dataclass(frozen=True)
class DemoStep:
    """One named step of the demo."""

    name: str
    run: Callable[[DemoContext], str]
    """Does the work and returns a one-line summary to print."""


def generate_step(ctx: DemoContext) -> str:
    """Fill the lake: the Netflix titles catalog with synthetic viewing (``demo_catalog``)."""
    from core.lake import Lake
    from marquee.commands.demo_catalog import demo_catalog_path, fill_demo_lake

    catalog = demo_catalog_path()
    report = fill_demo_lake(Lake.from_settings(ctx.settings), ctx.seed, ctx.scale, catalog)
    ctx.results["ingest"] = report
    counts = ", ".join(f"{name} {rows:,}" for name, rows in report.rows.items())
    source = f"the Netflix titles catalog ({catalog.name})" if catalog else "a generated catalog (no Netflix CSV found)"
    return f"{source}, synthetic viewing: {counts} in {report.seconds:.1f} s"


def describe_step(ctx: DemoContext) -> str:
    """Print what the lake holds now."""
    from core.lake import Lake
    from marquee.commands.data import describe_text

    lake = Lake.from_settings(ctx.settings)
    text = describe_text(lake, lake.describe())
    typer.echo(text)
    return "lake described"


def features_step(ctx: DemoContext) -> str:
    """Apply the Feast repo and materialize features from the lake into the online store."""
    from core.lake import Lake
    from features.pipelines import PipelineOptions
    from features.store import apply_definitions, materialize, open_store

    store = open_store(ctx.settings, apply=False)
    services = apply_definitions(store)
    report = materialize(
        store, Lake.from_settings(ctx.settings), options=PipelineOptions(), progress=True, engine="direct"
    )
    rows = sum(report.tables.rows.values())
    return f"feature services {', '.join(services)}; {rows:,} feature rows, online store {ctx.settings.feast_online}"


def train_step(ctx: DemoContext) -> str:
    """Train candidates and the ranker, log to MLflow, register and promote the champion."""
    from training.pipeline import TrainingConfig, run_training

    config = TrainingConfig(seed=ctx.seed, progress=True)
    result = run_training(ctx.settings, config)
    ctx.results["training"] = result
    best = max(result.metrics.items(), key=lambda item: item[1]["ndcg@10"])
    registered = ""
    if result.registration is not None:
        reg = result.registration
        registered = f"; registered version {reg.version} ({'champion' if reg.promoted else 'challenger'})"
    return f"best validation list {best[0]} ndcg@10 {best[1]['ndcg@10']:.4f}{registered}"


def serve_step(ctx: DemoContext) -> str:
    """Start the model server, the API and the MLflow UI, and wait until each answers."""
    if not ctx.serve:
        return "skipped (--no-serve)"
    settings = ctx.settings
    run_dir = settings.workspace.run_dir
    env = {"MARQUEE_HOME": str(settings.workspace.home), "MARQUEE_SERVING_URL": f"http://127.0.0.1:{ctx.model_port}"}
    processes = [
        ManagedProcess(
            "model server",
            marquee_command("serve", "models", "--port", str(ctx.model_port)),
            f"http://127.0.0.1:{ctx.model_port}/readyz",
            run_dir / "models.log",
            env,
        ),
        ManagedProcess(
            "API",
            marquee_command("serve", "api", "--port", str(ctx.api_port)),
            f"http://127.0.0.1:{ctx.api_port}/readyz",
            run_dir / "api.log",
            env,
        ),
        ManagedProcess(
            "MLflow UI",
            mlflow_command(settings.mlflow_uri, settings.mlflow_artifact_root, ctx.mlflow_port),
            f"http://127.0.0.1:{ctx.mlflow_port}/health",
            run_dir / "mlflow.log",
            env,
        ),
    ]
    edge = demo_edge_command()
    if edge is not None:  # the edges first: the API finds them (run/edges.json) when it starts
        edges = ManagedProcess("edges", marquee_command(*edge[0]), edge[1], run_dir / "edges.log", env)
        edges.start(REPO_ROOT)
        ctx.processes.append(edges)
        edges.wait_ready(deadline_s=60)
    for process in processes:
        process.start(REPO_ROOT)
        ctx.processes.append(process)
    waited = [f"{p.name} {p.wait_ready(deadline_s=180):.0f} s" for p in processes]
    return "ready: " + ", ".join(waited)


def _sample_profile(ctx: DemoContext) -> str | None:
    from core.lake import Lake

    events = Lake.from_settings(ctx.settings).read_or_empty("watch_events", ["profile_id"])
    if events.empty:
        return None
    return str(events["profile_id"].value_counts().index[0])


def _sample_title(ctx: DemoContext) -> str | None:
    from core.lake import Lake

    events = Lake.from_settings(ctx.settings).read_or_empty("watch_events", ["title_id"])
    if events.empty:
        return None
    return str(events["title_id"].value_counts().index[0])


def print_where_to_look(ctx: DemoContext) -> None:
    """Tell the user where everything is and how to try it."""
    profile = _sample_profile(ctx) or "PROFILE_ID"
    title = _sample_title(ctx) or "TITLE_ID"
    api = f"http://127.0.0.1:{ctx.api_port}"
    models = f"http://127.0.0.1:{ctx.model_port}"
    typer.echo(
        f"""
Marquee is running (workspace {ctx.settings.workspace.home}).

  Web page        {api}/
  API docs        {api}/docs
  Model server    {models}  (metrics at {models}/metrics)
  MLflow UI       http://127.0.0.1:{ctx.mlflow_port}
  Logs            {ctx.settings.workspace.run_dir}/*.log

Try it:
  # titles for a viewer, straight from the model server: each call carries the viewer context
  curl -s -X POST {models}/recommend -H 'content-type: application/json' \\
       -d '{{"viewer": {{"profile_id": "{profile}", "maturity_level": 3, "kids": false, "country": "US",
            "history": [{{"title_id": "{title}", "ts": "2026-01-01T00:00:00Z", "progress": 1.0,
                          "completed": true}}]}}, "k": 10}}'
  # a profile's home rows through the API: sign up, get a token, create a profile
  curl -s -X POST {api}/v1/auth/signup -H 'content-type: application/json' \\
       -d '{{"email": "me@example.com", "password": "a-long-password-1", "country": "US"}}'
  TOKEN=$(curl -s -X POST {api}/v1/auth/token -d 'username=me@example.com&password=a-long-password-1' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  PROFILE=$(curl -s -X POST {api}/v1/profiles -H "authorization: Bearer $TOKEN" \\
       -H 'content-type: application/json' -d '{{"name": "Me"}}' \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["profile_id"])')
  curl -s {api}/v1/profiles/$PROFILE/home -H "authorization: Bearer $TOKEN"

Press Ctrl-C to stop the servers."""
    )


#: The demo, in order.
DEMO_STEPS: list[DemoStep] = [
    DemoStep("generate", generate_step),
    DemoStep("describe", describe_step),
    DemoStep("features", features_step),
    DemoStep("train", train_step),
    DemoStep("media", lambda ctx: demo_media_step(ctx.settings.workspace.home, ctx.settings.workspace.lake_dir)),
    DemoStep("serve", serve_step),
]


def stop_processes(ctx: DemoContext) -> None:
    """Stop every server the demo started, newest first.

    A second Ctrl-C while stopping is ignored: interrupting the stop itself left
    the servers running with nobody to stop them.
    """
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        for process in reversed(ctx.processes):
            process.stop()
        ctx.processes.clear()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def run_steps(ctx: DemoContext, steps: list[DemoStep]) -> None:
    """Run ``steps`` in order, printing each step's name, summary and time."""
    for number, step in enumerate(steps, start=1):
        typer.echo(f"[{number}/{len(steps)}] {step.name} ...")
        began = time.perf_counter()
        summary = step.run(ctx)
        typer.echo(f"[{number}/{len(steps)}] {step.name}: {summary} ({time.perf_counter() - began:.1f} s)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root CLI."""

    @app.command("demo")
    def demo_command(
        scale: Annotated[float, typer.Option(help="Size of the generated data (1.0 = 1M events).")] = 0.2,
        seed: Annotated[int | None, typer.Option(help="Random seed (default: MARQUEE_SEED, 42).")] = None,
        serve: Annotated[
            bool, typer.Option("--serve/--no-serve", help="Start the servers and keep them up until Ctrl-C.")
        ] = True,
        model_port: Annotated[int, typer.Option(min=1, max=65535, help="Model server port.")] = 3000,
        api_port: Annotated[int, typer.Option(min=1, max=65535, help="API port.")] = 8000,
        mlflow_port: Annotated[int, typer.Option(min=1, max=65535, help="MLflow UI port.")] = 5000,
    ) -> None:
        """Run the whole loop on the embedded defaults: data, features, training, serving."""
        settings = load_settings()
        ctx = DemoContext(
            settings=settings,
            scale=scale,
            seed=settings.seed if seed is None else seed,
            serve=serve,
            model_port=model_port,
            api_port=api_port,
            mlflow_port=mlflow_port,
        )
        # A supervisor's SIGTERM stops the demo like Ctrl-C, so the servers it started stop too.
        signal.signal(signal.SIGTERM, _interrupt)
        # And Ctrl-C itself even when the demo inherited "ignore SIGINT" (a script started in the
        # background passes that on): otherwise the servers it started would outlive it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            run_steps(ctx, DEMO_STEPS)
            if not ctx.processes:
                return
            print_where_to_look(ctx)
            while all(p.process is not None and p.process.poll() is None for p in ctx.processes):
                time.sleep(1.0)
            dead = [p for p in ctx.processes if p.process is not None and p.process.poll() is not None]
            typer.secho(f"{dead[0].name} stopped unexpectedly; see {dead[0].log_path}", err=True)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            typer.echo("stopping the servers ...")
        finally:
            stop_processes(ctx)
