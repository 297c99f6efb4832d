"""Soak: mixed traffic at a steady rate for a long time against a started API (issue 16, Deliver 5).

Starts ``marquee serve api`` on a workspace (generating a small synthetic
catalog there if the lake has none), then sends a fixed rate of mixed requests
(home 40 %, search 20 %, watch events 30 %, manifests 10 %) from 16
accounts (each under the per-account limit of 600 requests a minute) for
``--minutes``. It samples the API process every 10 s (RSS, open file
descriptors) and prints, per 5-minute window (per minute on short runs), the
request count, p50/p99 and errors; then the verdict against the targets:
RSS growth after warm-up < 10 %, p99 of the last window within 1.5x the first,
no growth in open fds, every acknowledged event stored (checked in the
database).

    python bench/bench_soak.py --minutes 30 --rate 100          # the full soak
    python bench/bench_soak.py --minutes 3 --rate 100           # a short run (say so when reporting)
"""

from __future__ import annotations

import argparse
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_SERVING_URL": "http://127.0.0.1:9"}
    lake_titles = home / "lake" / "titles"
    if not lake_titles.exists():
        subprocess.run(
            [sys.executable, "-m", "marquee", "data", "generate", "--titles", "500", "--profiles", "200",
             "--events", "5000"], env=env, check=True,
        )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "marquee", "serve", "api", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the API did not start")


def sign_in(url: str, client: httpx.Client) -> tuple[dict[str, str], str, list[str]]:
    email = f"soak-{uuid.uuid4().hex[:10]}@example.com"
    client.post(f"{url}/v1/auth/signup", json={"email": email, "password": "soak password 1"})
    token = client.post(f"{url}/v1/auth/token", data={"username": email, "password": "soak password 1"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    profile = client.post(f"{url}/v1/profiles", json={"name": "Soak"}, headers=headers).json()["profile_id"]
    titles = client.get(f"{url}/v1/titles", params={"limit": 100, "profile_id": profile}, headers=headers).json()
    return headers, profile, [t["title_id"] for t in titles["items"] if t["type"] == "movie"]


def traffic(
    url: str, run: Run, stop_at: float, interval: float, seed: int, account: tuple[dict[str, str], str, list[str]]
) -> None:
    rng = random.Random(seed)
    headers, profile, movies = account
    with httpx.Client(timeout=10.0) as client:
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            roll = rng.random()
            started = time.perf_counter()
            event_id = None
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
            sample = Sample(time.monotonic(), kind, status, 1000 * (time.perf_counter() - started))
            with run.lock:
                run.samples.append(sample)
                if event_id and status in (200, 201):
                    run.acknowledged.add(event_id)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, all clients together")
    parser.add_argument(
        "--clients", type=int, default=16, help="accounts sending traffic (each stays under the 600/min account limit)"
    )
    parser.add_argument("--warmup", type=float, default=None, help="seconds excluded from RSS growth (default 10 %%)")
    parser.add_argument("--home", type=Path, default=None, help="workspace (default: a fresh temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="marquee-soak-")) / "ws"
    port = free_port()
    api = start_api(home, port)
    url = f"http://127.0.0.1:{port}"
    proc = psutil.Process(api.pid)
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else duration * 0.1
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
    resources: list[tuple[float, float, int]] = []
    while time.monotonic() < stop_at:
        resources.append((time.monotonic() - started, proc.memory_info().rss / 2**20, proc.num_fds()))
        time.sleep(10)
    for thread in threads:
        thread.join()
    resources.append((time.monotonic() - started, proc.memory_info().rss / 2**20, proc.num_fds()))
    api.terminate()
    api.wait(timeout=30)

    window = 300.0 if duration >= 900 else 60.0
    print(f"\nsoak: {args.minutes:g} min at {args.rate:g} req/s target, {args.clients} clients, window {window:g} s")
    print(f"{'window':>8} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'5xx':>5} {'no answer':>9}")
    windows: list[float] = []
    n = int(duration // window) or 1
    for i in range(n):
        lo, hi = started + i * window, started + (i + 1) * window
        part = [s for s in run.samples if lo <= s.at < hi]
        ms = [s.ms for s in part if s.status]
        windows.append(p(ms, 0.99))
        print(f"{i + 1:>8} {len(part):>9} {len(part) / window:>7.1f} {p(ms, 0.5):>8.1f} {p(ms, 0.99):>8.1f} "
              f"{sum(1 for s in part if s.status >= 500):>5} {sum(1 for s in part if s.status == 0):>9}")  # fmt: skip
    after = [r for r in resources if r[0] >= warmup]
    rss_growth = (after[-1][1] / after[0][1] - 1) * 100 if len(after) > 1 else float("nan")
    fds = [r[2] for r in after]
    with sqlite3.connect(home / "catalog.db") as db:
        stored = {row[0] for row in db.execute("SELECT event_id FROM watch_events")}
    lost = len(run.acknowledged - stored)
    kinds = {k: sum(1 for s in run.samples if s.kind == k) for k in ("home", "search", "event", "manifest")}
    statuses = {c: sum(1 for s in run.samples if s.status == c) for c in sorted({s.status for s in run.samples})}
    print(f"\nrequests by kind: {kinds}; statuses: {statuses}")
    print(f"RSS after warm-up: {after[0][1]:.0f} -> {after[-1][1]:.0f} MiB ({rss_growth:+.1f} %; target < 10 %)")
    print(f"open fds after warm-up: first {fds[0]}, last {fds[-1]}, max {max(fds)} (target: no growth)")
    drift = windows[-1] / windows[0]
    print(f"p99 last/first window: {windows[-1]:.1f} / {windows[0]:.1f} ms = {drift:.2f}x (target <= 1.5x)")
    kept = len(run.acknowledged & stored)
    print(f"events acknowledged: {len(run.acknowledged)}, stored: {kept}, lost: {lost} (target 0)")
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(resources)]
    print(f"resource samples: {len(resources)}, every {statistics.median(gaps):.0f} s")


if __name__ == "__main__":
    main()
