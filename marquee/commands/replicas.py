"""N replicas of one server behind HAProxy: start, watch, restart, stop (``--replicas N``).

``marquee serve api --replicas N`` and ``marquee serve models --replicas N``
call :func:`serve_replicated`: each replica is the single-process command
(``marquee serve api --port P``...) on a port of its own, bound to loopback, so
clients reach it only through the balancer. The balancer is a real HAProxy
(``marquee.balancer``), its configuration generated into the workspace's
``run/`` folder next to every replica's log and a state file naming the
replicas' addresses and pids (``replicas-<tier>-<port>.json``).

Ports are the kernel's pick (bind 0, close) and a replica binds its port
seconds later, so another process may take it in between: a replica that dies
at start-up with "address already in use" is started again on a new pick
(``PORT_ATTEMPTS`` in all); the balancer's configuration is written once every
replica is ready, so it names the ports they really listen on.

A replica that dies later is started again on its port (after 1 s, doubling up to
30 s while it keeps dying); HAProxy's health checks send it traffic again once
it answers. If HAProxy itself dies, everything stops: without it nothing is
served. Ctrl-C or SIGTERM stops the balancer first (no new requests), then the
replicas (each drains on SIGTERM; its whole process group, and any descendant,
is killed after the grace period); a second Ctrl-C during the stop is ignored,
so it cannot leave replicas running with nobody to stop them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

from core.errors import ServiceUnavailableError
from core.ports import free_ports
from marquee.balancer import Replica, TierPolicy, haproxy_command, render_config, write_config
from marquee.commands.demo_processes import ManagedProcess

#: Where every replica listens: only the balancer (on the same host) talks to them.
REPLICA_HOST = "127.0.0.1"
#: Restart back-off of a replica that keeps dying: first wait, longest wait, and how long it must stay up to reset.
RESTART_FIRST_S, RESTART_MAX_S, STABLE_S = 1.0, 30.0, 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Ports a replica is tried on at start-up when the one it was given is taken before it binds it.
PORT_ATTEMPTS = 4
#: What a server's log says when its port is taken (uvicorn, BentoML: errno 98, EADDRINUSE).
_PORT_TAKEN = "address already in use"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _port_taken(log: Path, start: int) -> bool:
    """Whether the log, from byte ``start`` on, says the server could not bind its port."""
    try:
        with log.open("rb") as handle:
            handle.seek(start)
            return _PORT_TAKEN in handle.read().decode(errors="replace").lower()
    except FileNotFoundError:
        return False


@dataclass
class _Member:
    """One replica and its restart bookkeeping."""

    process: ManagedProcess
    port: int
    started_at: float = 0.0
    backoff_s: float = RESTART_FIRST_S
    restart_at: float | None = None
    restarts: int = 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class ReplicaSet:
    """N replicas of one tier and their HAProxy.

    Args:
        policy: the tier (health route, timeouts, what may be replayed).
        count: how many replicas.
        bind_host, bind_port: where the balancer listens (what clients use).
        command: the command line of the replica listening on a given port.
        env: environment added to every replica's.
        run_dir: the workspace's ``run/`` folder (config, logs, state file).
        ready_s: how long a replica may take to become ready.
    """

    def __init__(
        self,
        policy: TierPolicy,
        count: int,
        bind_host: str,
        bind_port: int,
        command: Callable[[int], list[str]],
        env: dict[str, str],
        run_dir: Path,
        ready_s: float = 180.0,
    ) -> None:
        self.policy = policy
        self.bind_host, self.bind_port = bind_host, bind_port
        self.run_dir = run_dir
        self.ready_s = ready_s
        self.command, self.env = command, env
        self.tag = f"{policy.name}-{bind_port}"
        picks = free_ports(count, avoid={bind_port})  # never the balancer's own port, which it binds last
        self.members = [_Member(self._process(i, port), port) for i, port in enumerate(picks, start=1)]
        self.config_path = run_dir / f"haproxy-{self.tag}.cfg"
        self.state_path = run_dir / f"replicas-{self.tag}.json"
        self.balancer = ManagedProcess(
            f"{policy.name} balancer",
            haproxy_command(self.config_path),
            f"http://{REPLICA_HOST if bind_host in ('0.0.0.0', '::') else bind_host}:{bind_port}{policy.health_path}",
            run_dir / f"haproxy-{self.tag}.log",
        )

    @property
    def url(self) -> str:
        """Where clients reach the tier."""
        return f"http://{self.bind_host}:{self.bind_port}"

    def _process(self, index: int, port: int) -> ManagedProcess:
        """Replica ``index`` listening on ``port`` (its log is the same file whatever the port)."""
        return ManagedProcess(
            f"{self.policy.name} replica {index}",
            self.command(port),
            f"http://{REPLICA_HOST}:{port}{self.policy.health_path}",
            self.run_dir / f"{self.tag}-replica{index}.log",
            self.env,
        )

    def start(self) -> None:
        """Start every replica, wait until each is ready, then the balancer in front of them.

        Raises:
            ServiceUnavailableError: the balancer's port is taken (checked before the replicas
                start and again just before HAProxy: a server already there would answer the
                balancer's health check in its place), or a replica could not start.
        """
        self._check_balancer_port()
        for member in self.members:
            member.process.start(REPO_ROOT)
            member.started_at = time.monotonic()
        for index, member in enumerate(self.members, start=1):
            self._wait_ready(index, member)
        replicas = [Replica(f"r{i}", REPLICA_HOST, m.port) for i, m in enumerate(self.members, start=1)]
        write_config(self.config_path, render_config(self.policy, self.bind_host, self.bind_port, replicas))
        self._check_balancer_port()
        self.balancer.start(REPO_ROOT)
        self.balancer.wait_ready(30.0)
        self.write_state()

    def _check_balancer_port(self) -> None:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HAProxy binds it
            try:
                probe.bind((self.bind_host, self.bind_port))
            except OSError as exc:
                raise ServiceUnavailableError(
                    f"the {self.policy.name} balancer's port {self.bind_host}:{self.bind_port} is taken "
                    f"by another process ({exc.strerror}); choose another --port"
                ) from exc

    def _wait_ready(self, index: int, member: _Member) -> None:
        """Wait for one replica; while it died because its port was taken, start it on another.

        Raises:
            ServiceUnavailableError: it died for another reason, was not ready in time, or
                found ``PORT_ATTEMPTS`` ports taken.
        """
        log_start = 0  # this attempt's part of the log (a restart appends to it)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                member.process.wait_ready(self.ready_s)
                return
            except ServiceUnavailableError:
                exited = member.process.process is not None and member.process.process.poll() is not None
                if not exited or attempt == PORT_ATTEMPTS or not _port_taken(member.process.log_path, log_start):
                    raise
            taken = member.port
            member.process.kill_leftovers()
            member.port = free_ports(1, avoid={self.bind_port, *(m.port for m in self.members)})[0]
            typer.secho(
                f"{member.process.name}: port {taken} was taken before it could bind it; starting it on {member.port}",
                err=True,
            )
            member.process = self._process(index, member.port)
            log_start = _size(member.process.log_path)
            member.process.start(REPO_ROOT, append=True)
            member.started_at = time.monotonic()

    def write_state(self) -> None:
        """Record the balancer's and the replicas' addresses and pids (operators and tests read it)."""
        state = {
            "tier": self.policy.name,
            "balancer": self.url,
            "config": str(self.config_path),
            "replicas": [
                {
                    "url": f"http://{REPLICA_HOST}:{m.port}",
                    "pid": m.process.process.pid if m.process.process else None,
                    "log": str(m.process.log_path),
                    "restarts": m.restarts,
                }
                for m in self.members
            ],
        }
        self.state_path.write_text(json.dumps(state, indent=2))

    def watch_once(self, now: float) -> None:
        """Restart replicas that died (with back-off); raise if the balancer died."""
        balancer = self.balancer.process
        if balancer is not None and balancer.poll() is not None:
            raise ServiceUnavailableError(
                f"HAProxy exited with code {balancer.returncode}; see {self.balancer.log_path}"
            )
        for member in self.members:
            process = member.process.process
            if process is None or process.poll() is None:
                if now - member.started_at > STABLE_S:
                    member.backoff_s = RESTART_FIRST_S
                continue
            if member.restart_at is None:
                typer.secho(
                    f"{member.process.name} exited with code {process.returncode}; "
                    f"restarting in {member.backoff_s:.0f} s (log {member.process.log_path})",
                    err=True,
                )
                member.process.kill_leftovers()
                member.restart_at = now + member.backoff_s
            elif now >= member.restart_at:
                member.process.start(REPO_ROOT, append=True)
                member.started_at, member.restart_at = now, None
                member.backoff_s = min(RESTART_MAX_S, member.backoff_s * 2)
                member.restarts += 1
                self.write_state()

    def stop(self) -> None:
        """The balancer first (no new requests), then every replica."""
        self.balancer.stop(grace_s=5.0)
        for member in self.members:
            member.process.stop()
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()


def serve_replicated(replicas: ReplicaSet, notes: list[str]) -> None:
    """Run ``replicas`` until Ctrl-C or SIGTERM, restarting replicas that die; stop everything after."""
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        replicas.start()
        typer.echo(
            f"{replicas.policy.name} tier on {replicas.url}: HAProxy in front of {len(replicas.members)} replicas"
        )
        for member in replicas.members:
            typer.echo(f"  {member.process.name}: http://{REPLICA_HOST}:{member.port} (log {member.process.log_path})")
        typer.echo(f"  balancer config {replicas.config_path}; state {replicas.state_path}")
        for note in notes:
            typer.echo(f"  note: {note}")
        typer.echo("Ctrl-C stops the balancer and every replica.")
        while True:
            time.sleep(0.5)
            replicas.watch_once(time.monotonic())
    except KeyboardInterrupt:
        typer.echo(f"stopping the {replicas.policy.name} tier ...")
    finally:
        # A second Ctrl-C (or SIGTERM) while stopping is ignored: interrupting the stop would orphan replicas.
        previous = (
            {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
        )
        try:
            replicas.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
