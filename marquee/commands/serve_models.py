"""`marquee serve models`: run the BentoML model server (``bentoml serve``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.errors import InvalidInputError
from core.memory import ARENAS_ENV, DEFAULT_ARENAS

if TYPE_CHECKING:
    from core.settings import Settings

#: The service class BentoML imports, relative to the repository root.
SERVICE = "serving.service:MarqueeRecommender"


def bentoml_command(port: int, host: str) -> list[str]:
    """The ``bentoml serve`` command line, using the ``bentoml`` next to this interpreter."""
    exe = Path(sys.executable).with_name("bentoml")
    bentoml = str(exe) if exe.exists() else (shutil.which("bentoml") or "bentoml")
    return [bentoml, "serve", SERVICE, "--port", str(port), "--host", host]


def register(group: typer.Typer) -> None:
    """Add `models` to the `serve` group."""

    @group.command("models")
    def serve_models(
        port: int = typer.Option(3000, help="TCP port of the model server."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
        workers: int = typer.Option(2, help="Worker processes (one per core; each loads the models)."),
        timeout: float = typer.Option(0.5, help="Per-request timeout in seconds."),
        max_concurrency: int = typer.Option(64, help="Requests in flight before the server answers 503."),
        poll: float = typer.Option(5.0, help="Seconds between checks for a moved champion/challenger alias."),
        replicas: int = typer.Option(
            1, help="Model-server processes behind HAProxy on --port (each with --workers workers; see docs)."
        ),
    ) -> None:
        """Serve recommendations from the registered champion and challenger (hot reload on alias moves)."""
        from marquee.commands._common import load_settings

        if not 1 <= port <= 65535:
            raise InvalidInputError(f"--port must be between 1 and 65535, got {port}")
        if workers < 1:
            raise InvalidInputError(f"--workers must be at least 1, got {workers}")
        if replicas < 1:
            raise InvalidInputError(f"--replicas must be at least 1, got {replicas}")
        settings = load_settings()
        if replicas > 1:
            options = ["--workers", str(workers), "--timeout", str(timeout)]
            options += ["--max-concurrency", str(max_concurrency), "--poll", str(poll)]
            _serve_replicas(settings, replicas, port, host, options)
            return
        env = dict(os.environ)
        env.update(
            {
                "MARQUEE_HOME": str(settings.workspace.home),
                "MARQUEE_SERVING_WORKERS": str(workers),
                "MARQUEE_SERVING_TIMEOUT_S": str(timeout),
                "MARQUEE_SERVING_MAX_CONCURRENCY": str(max_concurrency),
                "MARQUEE_SERVING_POLL_S": str(poll),
                "OPENBLAS_NUM_THREADS": env.get("OPENBLAS_NUM_THREADS", "1"),
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
                # glibc reads it before any thread exists: each worker keeps 2 malloc arenas (core.memory).
                ARENAS_ENV: env.get(ARENAS_ENV, str(DEFAULT_ARENAS)),
                "BENTOML_DO_NOT_TRACK": "True",
            }
        )
        root = Path(__file__).resolve().parents[2]
        command = bentoml_command(port, host)
        typer.echo(f"model server on http://{host}:{port} (workspace {settings.workspace.home}); Ctrl-C stops it")
        process = subprocess.Popen(command, cwd=root, env=env)
        # A supervisor stops us with SIGTERM: pass it on so bentoml drains and stops its workers.
        signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_tree(process)
                code = process.wait()
        if code not in (0, -signal.SIGINT, -signal.SIGTERM, 130, 143):
            raise typer.Exit(code)


def _serve_replicas(settings: Settings, count: int, port: int, host: str, options: list[str]) -> None:
    """``count`` model servers (each ``marquee serve models OPTIONS`` on a loopback port) behind HAProxy."""
    from marquee.balancer import MODEL_TIER
    from marquee.commands.demo_processes import marquee_command
    from marquee.commands.replicas import REPLICA_HOST, ReplicaSet, serve_replicated

    def command(replica_port: int) -> list[str]:
        return marquee_command("serve", "models", "--port", str(replica_port), "--host", REPLICA_HOST, *options)

    env = {"MARQUEE_HOME": str(settings.workspace.home)}
    notes = []
    if settings.feast_online == "sqlite":
        notes.append(
            "online features are read from the workspace's SQLite store, which only replicas on this host "
            "share; set MARQUEE_FEAST_ONLINE=redis://host:6379 for replicas on several hosts"
        )
    tier = ReplicaSet(MODEL_TIER, count, host, port, command, env, settings.workspace.run_dir)
    serve_replicated(tier, notes)


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL bentoml and its workers: killing only bentoml leaves its workers running as orphans."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.kill()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
