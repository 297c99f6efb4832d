"""Marquee's servers started as processes for tests: start, wait until ready, stop (the whole tree).

The Done-when tests (``tests/api/test_api_realtime.py``) and the model-server fault
tests (``tests/faults/test_fault_model_server.py``) start ``marquee serve models``
(and an API) the way a user does, on a workspace holding the small serving world.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]


def world_env(home: Path, tmp: Path, models_port: int) -> dict[str, str]:
    """The environment of servers on workspace ``home``, the model server on ``models_port``."""
    return {
        **os.environ,
        "MARQUEE_HOME": str(home),
        "MARQUEE_SERVING_URL": f"http://127.0.0.1:{models_port}",
        "MARQUEE_EXPERIMENTS_DIR": str(tmp / "experiments"),
        "MARQUEE_LOG_LEVEL": "WARNING",
        "OPENBLAS_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, its output appended to ``log``."""
    with log.open("a") as out:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def signal_tree(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to ``process`` and every process under it (BentoML's workers run in sessions of their own)."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(sig)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, then after 20 s kill the whole tree; a paused process is woken first."""
    if process.poll() is not None:
        return
    signal_tree(process, signal.SIGCONT)  # a paused process cannot handle SIGINT
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        signal_tree(process, signal.SIGKILL)
        process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, in_a_row: int = 1) -> None:
    """Until ``url``'s ``/readyz`` answers 200 ``in_a_row`` times running (every worker up); 120 s at most."""
    deadline, ready = time.monotonic() + 120, 0
    while ready < in_a_row:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            ready = ready + 1 if httpx.get(f"{url}/readyz", timeout=2).status_code == 200 else 0
        except httpx.TransportError:
            ready = 0
        assert time.monotonic() < deadline, f"{url} not ready in 120 s:\n" + log.read_text()[-3000:]
        if ready == 0:
            time.sleep(0.3)
