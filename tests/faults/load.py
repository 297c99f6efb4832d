"""Bounded, self-stopping load on loopback, and the API process it runs against.

``ApiProcess`` starts ``tests.faults.launch_api`` as a real child process (so a
fault can SIGKILL or SIGSTOP it). ``run_load`` sends a fixed rate of requests
from a few threads for a fixed time and records every answer; watch events are
posted with retries under a stable ``event_id``, so "acknowledged" means a 2xx
reached the client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.api.support import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class ApiProcess:
    """A catalog API in its own process on a free port."""

    def __init__(self, env: dict[str, str], schema: str | None = None) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.schema = schema
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait until it answers."""
        args = [sys.executable, "-m", "tests.faults.launch_api", str(self.port)]
        if self.schema:
            args.append(self.schema)
        self.process = subprocess.Popen(args, cwd=REPO_ROOT, env=self.env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("API did not start in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Answer:
    """One request's outcome: when, what, status (0: no answer, then ``error`` says why), Retry-After."""

    at: float
    kind: str
    status: int
    retry_after: str | None = None
    error: str | None = None


@dataclass
class LoadResult:
    """Everything a load run saw."""

    answers: list[Answer] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    @property
    def server_errors(self) -> list[Answer]:
        """Answers >= 500 other than a 503 that says when to retry."""
        return [a for a in self.answers if a.status >= 500 and not (a.status == 503 and a.retry_after)]

    def count(self, predicate: Callable[[Answer], bool]) -> int:
        return sum(1 for a in self.answers if predicate(a))

    def recovered_after(self, fault_end: float) -> float | None:
        """Seconds after ``fault_end`` until the first 2xx read; None if none came."""
        later = [a.at for a in self.answers if a.at >= fault_end and 200 <= a.status < 300 and a.kind == "read"]
        return min(later) - fault_end if later else None


def post_event_with_retries(
    client: httpx.Client, base_url: str, headers: dict[str, str], profile_id: str, result: LoadResult, deadline: float
) -> None:
    """Post one heartbeat, retrying (same ``event_id``) until a 2xx or the deadline."""
    event_id = uuid.uuid4().hex
    body = {"event_id": event_id, "title_id": "m_space", "position_s": 10, "duration_s": 100}
    while time.monotonic() < deadline:
        try:
            response = client.post(f"{base_url}/v1/profiles/{profile_id}/events", json=body, headers=headers)
            result.record(Answer(time.monotonic(), "event", response.status_code, response.headers.get("retry-after")))
            if response.status_code in (200, 201):
                with result.lock:
                    result.acknowledged.add(event_id)
                return
        except httpx.HTTPError:
            result.record(Answer(time.monotonic(), "event", 0))
        time.sleep(0.1)


#: One request of a load mix: (client, base URL, request number of this thread, result to record into).
Step = Callable[[httpx.Client, str, int, LoadResult], None]


def timed_request(client: httpx.Client, kind: str, result: LoadResult, method: str, url: str, **kwargs: Any) -> None:
    """Send one request and record its answer (status 0: no answer at all)."""
    try:
        response = client.request(method, url, **kwargs)
        result.record(Answer(time.monotonic(), kind, response.status_code, response.headers.get("retry-after")))
    except httpx.HTTPError as exc:
        result.record(Answer(time.monotonic(), kind, 0, error=f"{type(exc).__name__}: {exc}"))


def run_load(
    base_url: Callable[[], str],
    headers: dict[str, str],
    profile_id: str,
    duration_s: float,
    rate: float,
    threads: int = 4,
    step: Step | None = None,
    timeout_s: float = 5.0,
) -> LoadResult:
    """``rate`` requests/s for ``duration_s`` from ``threads`` threads.

    The default mix is half event posts with retries, half history reads; ``step``
    replaces it (it is called with each thread's running request number). A request
    without an answer after ``timeout_s`` is recorded as status 0.
    """
    result = LoadResult()
    stop_at = time.monotonic() + duration_s
    interval = threads / rate

    def events_and_history(client: httpx.Client, url: str, n: int, result: LoadResult) -> None:
        if n % 2 == 0:
            post_event_with_retries(client, url, headers, profile_id, result, stop_at + 10)
        else:
            timed_request(client, "read", result, "GET", f"{url}/v1/profiles/{profile_id}/history", headers=headers)

    mix = step or events_and_history

    def worker(index: int) -> None:
        with httpx.Client(timeout=timeout_s) as client:
            n = 0
            while time.monotonic() < stop_at:
                started = time.monotonic()
                mix(client, base_url(), n + index, result)
                n += 1
                time.sleep(max(0.0, interval - (time.monotonic() - started)))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return result


def sign_in(base_url: str) -> tuple[dict[str, str], str]:
    """A new account with one profile: its headers and profile id."""
    email, password = f"{uuid.uuid4().hex}@example.com", "correct horse 1"
    assert httpx.post(f"{base_url}/v1/auth/signup", json={"email": email, "password": password}).status_code == 201
    token = httpx.post(f"{base_url}/v1/auth/token", data={"username": email, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    profile = httpx.post(f"{base_url}/v1/profiles", json={"name": "Load"}, headers=headers).json()["profile_id"]
    return headers, str(profile)


def events_in_database(engine: Any) -> list[str]:
    """Every stored ``event_id`` (duplicates kept, so a double write would show)."""
    from sqlalchemy import text

    with engine.connect() as connection:
        return [str(e) for e in connection.execute(text("SELECT event_id FROM watch_events")).scalars()]
