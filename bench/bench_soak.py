"""Soak: mixed traffic at a steady rate for a long time against the started servers (issue 16, Deliver 5).

Starts the model server (``marquee serve models``, the default models trained on
the workspace first; ``--model-server none`` leaves it out, every home page then
being the fallback) and ``marquee serve api`` on a workspace (a small synthetic
catalog generated there if the lake has none), then sends a fixed rate of mixed
requests (home 40 %, search 20 %, watch events 30 %, manifests 10 %) from 16
accounts (each under the per-account limit of 600 requests a minute) for
``--minutes``. Clients refresh their tokens as a real client does: shortly
before the access token expires, and after a 401 (counted as a failure).
It samples each server's process tree every 10 s (RSS, open file descriptors, CPU
time) and prints, per 5-minute window (per minute on short runs), the request count,
p50/p99, 5xx, 401s, other 4xx, requests without an answer, each tree's RSS and CPU
milliseconds per request, and the machine's load average (a p99 that follows the load,
with the servers' CPU per request flat, is the machine, not the code); then the verdict
against the targets per process: RSS growth after warm-up < 10 %, no growth in
open fds; p99 of the last window within 1.5x the first; every acknowledged
event stored (checked in the database).

    python bench/bench_soak.py --minutes 30 --rate 100          # the full soak
    python bench/bench_soak.py --minutes 3 --rate 100           # a short run (say so when reporting)

To find what grows, set ``MARQUEE_MEMORY_TRACE=/path/report.txt`` (see
``catalog_api.memory_trace``): the API then appends tracemalloc and heap reports
every minute. Tracing slows the API several times, so never with figures.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from core.ports import free_port

TITLES_QUERY = ["love", "war", "night", "star", "city", "the", "man", "life", "dark", "story"]


@dataclass
class Sample:
    at: float
    kind: str
    status: int
    ms: float


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str, path: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{what} did not start in 180 s")


def prepare_workspace(env: dict[str, str], home: Path, model_server: bool) -> None:
    """A generated catalog and history in the lake; with a model server, the default models trained on it."""
    if not (home / "lake" / "titles").exists():
        subprocess.run(
            [sys.executable, "-m", "marquee", "data", "generate", "--titles", "500", "--profiles", "200",
             "--events", "5000"], env=env, check=True,
        )  # fmt: skip
    trained = home / "run" / "soak-trained"
    if model_server and not trained.exists():
        started = time.perf_counter()
        for step in (["features", "apply"], ["features", "materialize"], ["train"]):
            subprocess.run([sys.executable, "-m", "marquee", *step], env=env, check=True, stdout=subprocess.DEVNULL)
        trained.touch()
        print(f"features and default models trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def start_servers(
    home: Path, model_server: bool, workers: int, api_args: tuple[str, ...] = ()
) -> tuple[str, dict[str, subprocess.Popen[bytes]]]:
    """Start the model server (when asked) and the API on free ports; returns the API's URL and the processes."""
    env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_LOG_LEVEL": "WARNING", "BENTOML_DO_NOT_TRACK": "True"}
    prepare_workspace(env, home, model_server)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    if model_server:
        port = free_port()
        env["MARQUEE_SERVING_URL"] = f"http://127.0.0.1:{port}"
        log = home / "run" / "soak-models.log"
        with log.open("ab") as out:
            processes["models"] = subprocess.Popen(
                [sys.executable, "-m", "marquee", "serve", "models", "--port", str(port), "--workers", str(workers)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_ready(env["MARQUEE_SERVING_URL"], processes["models"], f"marquee serve models (log: {log})", "/readyz")
    else:
        env["MARQUEE_SERVING_URL"] = "http://127.0.0.1:9"  # nothing listens: every home page is the fallback
    port = free_port()
    processes["api"] = subprocess.Popen(
        [sys.executable, "-m", "marquee", "serve", "api", "--port", str(port), *api_args],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}", processes["api"], "marquee serve api", "/healthz")
    return f"http://127.0.0.1:{port}", processes


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process under it (BentoML's workers)."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()


#: One resource sample of a process tree: seconds into the run, RSS (MiB), open fds, CPU seconds used so far.
Usage = tuple[float, float, int, float]


def tree_usage(pid: int) -> tuple[float, int, float]:
    """RSS (MiB), open fds and CPU seconds (user + system) of a process and its children."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan"), 0, float("nan")
    rss, fds, cpu = 0.0, 0, 0.0
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += member.memory_info().rss / 2**20
            fds += member.num_fds()
            times = member.cpu_times()
            cpu += times.user + times.system
    return rss, fds, cpu


class Credentials:
    """One client's tokens, refreshed as a real client does: before expiry, and on a 401, at /v1/auth/refresh.

    The access token lives 15 minutes; a soak longer than that with tokens never
    refreshed measures 401s, not the service.
    """

    #: Refresh this long before the access token expires (clock skew, a slow request).
    MARGIN_S = 60.0

    def __init__(self, url: str, pair: dict[str, object]) -> None:
        self.url = url
        self.refreshes = 0
        self._store(pair)

    def _store(self, pair: dict[str, object]) -> None:
        self.headers = {"Authorization": f"Bearer {pair['access_token']}"}
        self.refresh_token = str(pair["refresh_token"])
        self.refresh_at = time.monotonic() + float(str(pair["expires_in"])) - self.MARGIN_S

    def due(self) -> bool:
        """Whether the access token is about to expire."""
        return time.monotonic() >= self.refresh_at

    def refresh(self, client: httpx.Client) -> int:
        """Exchange the refresh token for a new pair; returns the status (200 on success)."""
        response = client.post(f"{self.url}/v1/auth/refresh", json={"refresh_token": self.refresh_token})
        if response.status_code == 200:
            self._store(response.json())
            self.refreshes += 1
        return response.status_code


def sign_in(url: str, client: httpx.Client) -> tuple[Credentials, str, list[str]]:
    email = f"soak-{uuid.uuid4().hex[:10]}@example.com"
    client.post(f"{url}/v1/auth/signup", json={"email": email, "password": "soak password 1"})
    pair = client.post(f"{url}/v1/auth/token", data={"username": email, "password": "soak password 1"}).json()
    credentials = Credentials(url, pair)
    headers = credentials.headers
    profile = client.post(f"{url}/v1/profiles", json={"name": "Soak"}, headers=headers).json()["profile_id"]
    titles = client.get(f"{url}/v1/titles", params={"limit": 100, "profile_id": profile}, headers=headers).json()
    return credentials, profile, [t["title_id"] for t in titles["items"] if t["type"] == "movie"]


def traffic(
    url: str, run: Run, stop_at: float, interval: float, seed: int, account: tuple[Credentials, str, list[str]]
) -> None:
    rng = random.Random(seed)
    credentials, profile, movies = account
    with httpx.Client(timeout=10.0) as client:
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            if credentials.due():
                record(run, "refresh", credentials.refresh(client), 0.0)
            roll = rng.random()
            started = time.perf_counter()
            event_id = None
            headers = credentials.headers
            try:
                if roll < 0.4:
                    kind, response = "home", client.get(f"{url}/v1/profiles/{profile}/home", headers=headers)
                elif roll < 0.6:
                    params = {"q": rng.choice(TITLES_QUERY), "profile_id": profile}
                    kind, response = "search", client.get(f"{url}/v1/search", params=params, headers=headers)
                elif roll < 0.9:
                    event_id = uuid.uuid4().hex
                    body = {"event_id": event_id, "title_id": rng.choice(movies), "position_s": rng.randint(0, 500),
                            "duration_s": 600}  # fmt: skip
                    kind, response = (
                        "event",
                        client.post(f"{url}/v1/profiles/{profile}/events", json=body, headers=headers),
                    )
                else:
                    path = f"{url}/v1/playback/{rng.choice(movies)}/manifest"
                    kind, response = "manifest", client.get(path, params={"profile_id": profile}, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                kind, status = "error", 0
            record(run, kind, status, 1000 * (time.perf_counter() - started), event_id)
            if status == 401:  # counted as a failure above; a real client refreshes and goes on
                record(run, "refresh", credentials.refresh(client), 0.0)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def record(run: Run, kind: str, status: int, ms: float, event_id: str | None = None) -> None:
    sample = Sample(time.monotonic(), kind, status, ms)
    with run.lock:
        run.samples.append(sample)
        if event_id and status in (200, 201):
            run.acknowledged.add(event_id)


def _rss_at(samples: list[Usage], at: float) -> float:
    """The process tree's RSS (MiB) at the last sample taken by ``at`` seconds into the run."""
    taken = [sample[1] for sample in samples if sample[0] <= at]
    return taken[-1] if taken else float("nan")


def _cpu_between(samples: list[Usage], lo: float, hi: float) -> float:
    """CPU seconds the process tree used between the last samples taken by ``lo`` and by ``hi`` seconds."""
    before = [sample[3] for sample in samples if sample[0] <= lo] or [sample[3] for sample in samples[:1]]
    after = [sample[3] for sample in samples if sample[0] <= hi]
    return after[-1] - before[-1] if before and after else float("nan")


def _mean_load(loads: list[tuple[float, float]], lo: float, hi: float) -> float:
    """The machine's mean 1-minute load average over the samples taken between ``lo`` and ``hi`` seconds."""
    taken = [load for at, load in loads if lo <= at <= hi]
    return statistics.mean(taken) if taken else float("nan")


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


TRAFFIC = ("home", "search", "event", "manifest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, all clients together")
    parser.add_argument(
        "--clients", type=int, default=16, help="accounts sending traffic (each stays under the 600/min account limit)"
    )
    parser.add_argument("--warmup", type=float, default=None, help="seconds excluded from RSS growth (default 10 %%)")
    parser.add_argument("--home", type=Path, default=None, help="workspace (default: a fresh temporary one)")
    parser.add_argument(
        "--model-server",
        choices=["bentoml", "none"],
        default="bentoml",
        help="bentoml: train the default models on the generated data and start `marquee serve models` "
        "(personalised pages); none: no model server, every home page is the popularity fallback",
    )
    parser.add_argument("--model-workers", type=int, default=1, help="BentoML worker processes")
    parser.add_argument(
        "--api-arg",
        action="append",
        default=[],
        help="an extra `marquee serve api` argument (repeatable), "
        "e.g. --api-arg=--no-push-features to see what the online push costs",
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="marquee-soak-")) / "ws"
    url, processes = start_servers(home, args.model_server == "bentoml", args.model_workers, tuple(args.api_arg))
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else duration * 0.1
    try:
        with httpx.Client(timeout=60.0) as client:  # sign-ups hash passwords: one at a time, before the clock starts
            accounts = [sign_in(url, client) for _ in range(args.clients)]
        run = Run()
        started = time.monotonic()
        stop_at = started + duration
        threads = [
            threading.Thread(target=traffic, args=(url, run, stop_at, args.clients / args.rate, i, accounts[i]))
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        resources: dict[str, list[Usage]] = {name: [] for name in processes}
        loads: list[tuple[float, float]] = []
        while True:
            for name, process in processes.items():
                resources[name].append((time.monotonic() - started, *tree_usage(process.pid)))
            loads.append((time.monotonic() - started, os.getloadavg()[0]))
            if time.monotonic() >= stop_at:
                break
            time.sleep(min(10.0, max(0.0, stop_at - time.monotonic())))
        for thread in threads:
            thread.join()
    finally:
        for process in processes.values():
            stop(process)
    report(args, run, started, duration, warmup, resources, loads, accounts, home)


def report(
    args: argparse.Namespace,
    run: Run,
    started: float,
    duration: float,
    warmup: float,
    resources: dict[str, list[Usage]],
    loads: list[tuple[float, float]],
    accounts: list[tuple[Credentials, str, list[str]]],
    home: Path,
) -> None:
    window = 300.0 if duration >= 900 else 60.0
    print(f"\nsoak: {args.minutes:g} min at {args.rate:g} req/s target, {args.clients} clients, window {window:g} s, "
          f"model server: {args.model_server}")  # fmt: skip
    print(f"{'window':>8} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'5xx':>5} {'401':>5} "
          f"{'other 4xx':>9} {'no answer':>9}" + "".join(f" {name + ' MiB':>11}" for name in resources)
          + "".join(f" {name + ' CPU ms/req':>15}" for name in resources) + f" {'load':>5}")  # fmt: skip
    windows: list[float] = []
    n = int(duration // window) or 1
    traffic_samples = [s for s in run.samples if s.kind in TRAFFIC or s.kind == "error"]
    for i in range(n):
        lo, hi = started + i * window, started + (i + 1) * window
        part = [s for s in traffic_samples if lo <= s.at < hi]
        ms = [s.ms for s in part if s.status]
        windows.append(p(ms, 0.99))
        print(f"{i + 1:>8} {len(part):>9} {len(part) / window:>7.1f} {p(ms, 0.5):>8.1f} {p(ms, 0.99):>8.1f} "
              f"{sum(1 for s in part if s.status >= 500):>5} {sum(1 for s in part if s.status == 401):>5} "
              f"{sum(1 for s in part if 400 <= s.status < 500 and s.status != 401):>9} "
              f"{sum(1 for s in part if s.status == 0):>9}" + "".join(
                  f" {_rss_at(samples, (i + 1) * window):>11.0f}" for samples in resources.values())
              + "".join(f" {1000 * _cpu_between(samples, i * window, (i + 1) * window) / max(len(part), 1):>15.2f}"
                        for samples in resources.values())
              + f" {_mean_load(loads, i * window, (i + 1) * window):>5.1f}")  # fmt: skip
    with sqlite3.connect(home / "catalog.db") as db:
        stored = {row[0] for row in db.execute("SELECT event_id FROM watch_events")}
    lost = len(run.acknowledged - stored)
    kinds = {k: sum(1 for s in run.samples if s.kind == k) for k in (*TRAFFIC, "refresh")}
    statuses = {
        c: sum(1 for s in traffic_samples if s.status == c) for c in sorted({s.status for s in traffic_samples})
    }
    refreshes = [s for s in run.samples if s.kind == "refresh"]
    print(f"\nrequests by kind: {kinds}; statuses (traffic): {statuses}")
    print(f"token refreshes: {sum(1 for s in refreshes if s.status == 200)} ok, "
          f"{sum(1 for s in refreshes if s.status != 200)} failed; "
          f"401 answers (failures): {statuses.get(401, 0)}")  # fmt: skip
    for name, samples in resources.items():
        after = [r for r in samples if r[0] >= warmup]
        growth = (after[-1][1] / after[0][1] - 1) * 100 if len(after) > 1 else float("nan")
        fds = [r[2] for r in after]
        print(f"{name}: RSS after warm-up {after[0][1]:.0f} -> {after[-1][1]:.0f} MiB ({growth:+.1f} %; < 10 %), "
              f"max {max(r[1] for r in after):.0f}; open fds first {fds[0]}, last {fds[-1]}, max {max(fds)} "
              f"(target: no growth)")  # fmt: skip
    drift = windows[-1] / windows[0]
    print(f"p99 last/first window: {windows[-1]:.1f} / {windows[0]:.1f} ms = {drift:.2f}x (target <= 1.5x)")
    kept = len(run.acknowledged & stored)
    print(f"events acknowledged: {len(run.acknowledged)}, stored: {kept}, lost: {lost} (target 0)")
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(resources["api"])]
    print(f"resource samples: {len(resources['api'])}, every {statistics.median(gaps):.0f} s; warm-up {warmup:.0f} s")
    del accounts


if __name__ == "__main__":
    main()
