"""Background servers for ``marquee demo``: start, wait until ready, stop cleanly.

The demo leaves the model server, the API and the MLflow UI running until
Ctrl-C; each is a child process started the way a user would start it
(``marquee serve models``, ``marquee serve api``, ``mlflow ui``), with its log
in the workspace's ``run/`` folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from core.errors import ServiceUnavailableError


@dataclass
class ManagedProcess:
    """One child server: how to start it, where it logs, how to tell it is ready."""

    name: str
    command: list[str]
    ready_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path, *, append: bool = False) -> None:
        """Start the process in its own process group, logging to ``log_path`` (``append``: after a restart)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab" if append else "wb")  # noqa: SIM115 - the child owns it for its lifetime
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, deadline_s: float) -> float:
        """Poll ``ready_url`` until it answers 200; return the seconds it took.

        Raises:
            ServiceUnavailableError: the process died or was not ready in time (names its log).
        """
        began = time.monotonic()
        while time.monotonic() - began < deadline_s:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceUnavailableError(
                    f"{self.name} exited with code {self.process.returncode}; the end of its log "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ServiceUnavailableError(
            f"{self.name} was not ready at {self.ready_url} after {deadline_s:.0f} s; see its log {self.log_path}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log: why a server that died at start-up died, shown at once."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:]) or "  | (empty)"

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it and every descendant after ``grace_s``.

        SIGTERM rather than SIGINT: a shell that starts the demo in the background
        makes its children ignore SIGINT, and every server here drains on SIGTERM.
        Descendants are collected before the first signal: BentoML's workers run in
        sessions of their own, so the group alone would leave them running.
        """
        if self.process is None or self.process.poll() is not None:
            self.kill_leftovers()
            return
        descendants = _descendants(self.process.pid)
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.is_running():
                    child.kill()

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the process group of a process that already exited.

        A supervisor calls this before restarting a replica whose main process died, so
        nothing of the old one keeps the port.
        """
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def marquee_command(*args: str) -> list[str]:
    """``marquee ARGS`` with this interpreter, so the demo uses the same environment."""
    return [sys.executable, "-m", "marquee", *args]


def mlflow_command(backend_uri: str, artifact_root: str, port: int) -> list[str]:
    """``mlflow ui`` next to this interpreter, on the workspace's store."""
    exe = Path(sys.executable).with_name("mlflow")
    return [
        str(exe),
        "ui",
        "--backend-store-uri",
        backend_uri,
        "--default-artifact-root",
        artifact_root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
