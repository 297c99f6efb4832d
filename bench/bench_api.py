"""Benchmark of the catalog API: search in-process, home rows and manifests under constant-rate load.

What it does, on the real Netflix catalog (``../shared/data/netflix-titles``)
plus a seeded synthetic watch history written to a temporary workspace:

1. search: the search service in-process (text backend, maturity and region
   filters, the profile's re-ranking) on a fixed set of queries typed as
   users type them (prefixes, typos, people, genres); p50 / p99 per query;
2. trains the default models on that data and starts the real model server
   (``marquee serve models``; ``--model-server stand-in`` starts instead a small
   HTTP server that speaks ``serving.contract`` and recommends from the
   exported history, to measure the API alone) and the API
   (``marquee serve api --workers 2``), then signs up accounts,
   creates profiles and posts their histories over HTTP;
3. an open-loop load generator (asyncio + httpx): requests are *scheduled* at
   a constant rate whatever the server does, and latency is measured from the
   scheduled time, so a stalled server cannot hide its queue (no coordinated
   omission). Home rows, then manifests.

Usage: ``python bench/bench_api.py [--rates 50,200] [--seconds 20] [--model-server bentoml|stand-in]``.
Prints tables; exits non-zero only when something could not run.
"""

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from core.ports import free_port  # noqa: E402  (bench_api_cpu imports it from here)

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

NETFLIX = REPO.parent / "shared" / "data" / "netflix-titles" / "netflix_titles.csv"


def fill_workspace(home: Path, csv: Path, n_events: int, seed: int) -> None:
    """The Netflix catalog and a synthetic history in the workspace lake."""
    from core.lake import Lake
    from features.ingest.frames import write_frames
    from features.ingest.netflix import read_netflix_titles
    from features.ingest.synthetic import SyntheticConfig

    frames = read_netflix_titles(csv, SyntheticConfig(seed=seed, n_profiles=2000, n_events=n_events))
    write_frames(Lake(home / "lake"), frames, started=time.perf_counter(), path=str(csv))


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in milliseconds."""
    array = np.asarray(samples_s) * 1000
    return float(np.percentile(array, 50)), float(np.percentile(array, 99)), float(array.max())


def bench_search(home: Path, seed: int) -> dict[str, Any]:
    """Search latency in-process on the real catalog."""
    from catalog_api.app import build_state, freeze_startup_objects
    from catalog_api.options import ApiOptions
    from catalog_api.services.catalog import TitleFilters
    from catalog_api.services.search import search_titles
    from core.settings import Settings

    settings = Settings(home=home)
    started = time.perf_counter()
    state = build_state(settings, ApiOptions())
    build_s = time.perf_counter() - started
    snapshot = state.catalog.snapshot
    rng = random.Random(seed)
    titles = list(snapshot.titles.values())
    queries: list[str] = []
    for title in rng.sample(titles, 400):
        words = title.title.split()
        typed = " ".join(words[:2])
        queries.append(typed[: max(3, len(typed) * 2 // 3)])  # a prefix, as the user types
        if len(words[0]) >= 5:
            chars = list(words[0].lower())
            i = rng.randrange(1, len(chars) - 1)
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
            queries.append("".join(chars))  # a typo
        if title.cast:
            queries.append(title.cast[0])
        if title.genres:
            queries.append(f"{title.genres[0]} {rng.choice(['love', 'war', 'family', 'murder', 'school'])}")
    plays = state.popularity.table.plays
    affinity = {"Dramas": 0.4, "Comedies": 0.3, "Documentaries": 0.3}
    # As `marquee serve api` does after start-up: the catalog and the index leave the GC's sight,
    # so the timings are the search's, not a full collection of this process's start-up heap.
    freeze_startup_objects()
    for query in queries[:50]:  # warm-up
        search_titles(state.catalog.backend, snapshot, query, maturity_level=3, country="US",
                      filters=TitleFilters(), affinity=affinity, plays=plays, limit=20)  # fmt: skip
    latencies, hits = [], 0
    for i, query in enumerate(queries):
        level = 1 if i % 4 == 0 else 3  # a quarter of the searches from kids profiles
        t0 = time.perf_counter()
        found = search_titles(state.catalog.backend, snapshot, query, maturity_level=level, country="US",
                              filters=TitleFilters(), affinity=affinity, plays=plays, limit=20)  # fmt: skip
        latencies.append(time.perf_counter() - t0)
        hits += bool(found)
    p50, p99, worst = percentiles(latencies)
    state.engine.dispose()
    return {"titles": len(snapshot), "queries": len(queries), "with_hits": hits, "p50": p50, "p99": p99,
            "max": worst, "startup_s": build_s}  # fmt: skip


def model_server_main(home: Path, port: int) -> None:
    """A stand-in model server: popularity re-ranked by the genres of the viewer context's history."""
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI

    from core.lake import Lake
    from serving.contract import (
        HomeCandidatesRequest,
        HomeCandidatesResponse,
        RecommendRequest,
        RecommendResponse,
        ScoredTitle,
        SimilarRequest,
        SimilarResponse,
        ViewerContext,
    )

    lake = Lake(home / "lake")
    titles = lake.read("titles", ["title_id", "genres", "maturity_level"])
    genres = dict(zip(titles["title_id"], titles["genres"].map(list), strict=True))
    levels = dict(zip(titles["title_id"], titles["maturity_level"], strict=True))
    cache: dict[str, Any] = {"at": 0.0, "history": {}, "popular": []}

    def refresh() -> None:
        # Re-read the exported history now and then (the API exports every second), off the hot path.
        if time.monotonic() - cache["at"] < 10:
            return
        cache["at"] = time.monotonic()
        events = lake.read_or_empty("watch_events", ["profile_id", "title_id"])
        series = events["title_id"].str.split("-s").str[0]
        history: dict[str, list[str]] = {}
        for profile_id, title_id in zip(events["profile_id"], series, strict=True):
            history.setdefault(profile_id, []).append(title_id)
        cache["history"] = history
        cache["popular"] = list(series.value_counts().index[:2000])

    refresh()

    app = FastAPI()

    def picks(viewer: ViewerContext, k: int) -> RecommendResponse:
        refresh()
        liked: dict[str, int] = {}
        for title_id in viewer.title_ids():
            for genre in genres.get(title_id.split("-s")[0], []):
                liked[genre] = liked.get(genre, 0) + 1
        skip = set(viewer.exclude) | viewer.completed_ids()
        level = viewer.maturity_level
        scored = [
            (t, sum(liked.get(g, 0) for g in genres.get(t, [])) + 1.0 / (rank + 1))
            for rank, t in enumerate(cache["popular"][:500])
            if t not in skip and levels.get(t, 3) <= level
        ]
        scored.sort(key=lambda p: -p[1])
        items = [ScoredTitle(title_id=t, score=float(s)) for t, s in scored[:k]]
        return RecommendResponse(items=items, model_version="bench-stand-in", source="model")

    def alike(title_id: str, k: int) -> SimilarResponse:
        refresh()
        seed = set(genres.get(title_id, []))
        found = [t for t in cache["popular"][:500] if t != title_id and seed & set(genres.get(t, []))]
        items = [ScoredTitle(title_id=t, score=1.0 / (i + 1)) for i, t in enumerate(found[:k])]
        return SimilarResponse(items=items, model_version="bench-stand-in")

    @app.post("/recommend")
    def recommend(body: RecommendRequest) -> RecommendResponse:
        return picks(body.viewer, body.k)

    @app.post("/similar")
    def similar(body: SimilarRequest) -> SimilarResponse:
        return alike(body.title_id, body.k)

    @app.post("/home_candidates")
    def home_candidates(body: HomeCandidatesRequest) -> HomeCandidatesResponse:
        return HomeCandidatesResponse(
            recommend=picks(body.viewer, body.k),
            similar=alike(body.similar.title_id, body.similar.k) if body.similar else None,
        )

    del pd
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def model_calls(serving_url: str) -> float | None:
    """Recommendations the model server has answered so far (its ``/metrics``, all workers); None if unknown.

    The API's own cache counters are per worker process, so with several API workers
    the model server's count is the one total that says how often a page missed the cache.
    """
    try:
        text = httpx.get(f"{serving_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    found = re.findall(r'marquee_recommendations_total\{endpoint="recommend"[^}]*\} ([0-9.e+]+)', text)
    return sum(float(v) for v in found) if found else None


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds of a process and all its children (BentoML runs workers under an arbiter)."""
    if pid is None:
        return None
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in (root, *root.children(recursive=True)))
    except psutil.Error:
        return None


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server and its children (its own process group when it has one)."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        process.kill()


#: How long a server may take to start: on a 2-core machine shared with other work (load average
#: 30) the API's start-up (catalog, search index, popularity) took longer than two minutes.
START_TIMEOUT_S = float(os.environ.get("MARQUEE_BENCH_START_TIMEOUT_S", "300"))


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str, path: str = "/readyz") -> None:
    """Poll until the server answers 200 (or fail with its output)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code in (200, 404, 405):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{what} did not start in {START_TIMEOUT_S:.0f} s")


def _respecting_rate_limit(call: Any) -> httpx.Response:
    """``call()``, waiting out the API's sign-up and login limit (429 + Retry-After) as a client would."""
    while True:
        response: httpx.Response = call()
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


#: Accounts signed up from one loopback source address: the API allows 100 sign-ups plus logins per
#: address and minute, so 500 accounts from one address took ten minutes of waiting out 429s.
ACCOUNTS_PER_ADDRESS = 40


def setup_users(api: str, accounts: int, seed: int, catalog_ids: list[str]) -> list[tuple[dict[str, str], str]]:
    """Accounts with two profiles each (one kids), each with a few watch events.

    Sign-ups come from several loopback addresses (127.0.0.2, .3, ...), as many clients
    would, so the per-address sign-up limit is met without waiting; it still applies.
    """
    rng = random.Random(seed)
    users: list[tuple[dict[str, str], str]] = []
    for first in range(0, accounts, ACCOUNTS_PER_ADDRESS):
        address = f"127.0.0.{2 + first // ACCOUNTS_PER_ADDRESS % 250}"
        batch = range(first, min(accounts, first + ACCOUNTS_PER_ADDRESS))
        with httpx.Client(base_url=api, timeout=30, transport=httpx.HTTPTransport(local_address=address)) as http:
            users += _sign_up(http, batch, rng, catalog_ids)
    return users


def _sign_up(
    http: httpx.Client, accounts: range, rng: random.Random, catalog_ids: list[str]
) -> list[tuple[dict[str, str], str]]:
    """Sign up and log in each account; two profiles each (one kids) with six watch events."""
    users = []
    for a in accounts:
        email = f"bench{a}@example.com"
        signup = {"email": email, "password": "bench password", "plan": "premium"}
        _respecting_rate_limit(partial(http.post, "/v1/auth/signup", json=signup))
        login = {"username": email, "password": "bench password"}
        token = _respecting_rate_limit(partial(http.post, "/v1/auth/token", data=login))
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for p, kids in enumerate((False, True)):
            profile = http.post("/v1/profiles", json={"name": f"p{p}", "is_kids": kids}, headers=headers)
            profile.raise_for_status()
            profile_id = profile.json()["profile_id"]
            for e, title_id in enumerate(rng.sample(catalog_ids, 6)):
                body = {
                    "event_id": f"{profile_id}-{e}",
                    "title_id": title_id,
                    "position_s": 500,
                    "duration_s": 1000,
                }
                http.post(f"/v1/profiles/{profile_id}/events", json=body, headers=headers)
            users.append((headers, profile_id))
    return users


class RawHttpPool:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator's transport.

    httpx cost about 4.5 ms of the bench process's CPU per home request, more than the
    API it was measuring, on the same two cores; this client parses only the status line,
    ``Content-Length`` and the body, which is all the bench reads.

    Idle connections are reused oldest first, so the load rotates over all of them as
    a fleet of clients would spread it; reusing the last one freed put nearly every
    request on the one or two connections, hence on one API worker, and left the
    other workers idle and their caches cold.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()

    async def get(self, request: bytes) -> tuple[int, bytes]:
        """Send a prepared request; returns (status, body). Raises ``OSError`` on a broken connection."""
        reused = bool(self._idle)
        reader, writer = self._idle.popleft() if reused else await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            match = _CONTENT_LENGTH.search(head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            if reused and not getattr(exc, "partial", b""):
                # The server closed an idle keep-alive connection: retry once on a new one, as HTTP clients do.
                self._idle.clear()
                return await self.get(request)
            raise OSError(f"bad response: {exc}") from exc
        except (asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise OSError(f"bad response: {exc}") from exc
        except BaseException:
            writer.close()
            raise
        self._idle.append((reader, writer))
        return status, body

    async def open(self, connections: int) -> None:
        """Open ``connections`` keep-alive connections up front, as a client fleet already holds them.

        Without this, the first requests of a phase each pay a TCP handshake and a new
        server-side protocol object, and the phase's p99 measures the ramp, not the service.
        """
        opened = await asyncio.gather(*(asyncio.open_connection(self.host, self.port) for _ in range(connections)))
        self._idle.extend(opened)

    def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


#: Home pages per profile and API worker served before the measured phases.
WARM_PAGES_PER_PROFILE = 3
#: Keep-alive connections the load generator opens before a phase's clock starts.
PREOPENED_CONNECTIONS = 32
_CONTENT_LENGTH = re.compile(rb"(?i)content-length:\s*(\d+)")
_SOURCE = re.compile(rb'"source":"(\w+)","fallback_reason":(?:null|"(\w+)")')


def prepare(host: str, path: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
    """The bytes of one GET request."""
    query = "?" + urlencode(params) if params else ""
    lines = [f"GET {path}{query} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def open_loop(api: str, rate: float, seconds: float, make_request: Any) -> dict[str, Any]:
    """Send ``rate`` requests per second for ``seconds``; latency from the scheduled send time.

    Requests are prepared before the clock starts, so the generator spends its time
    sending and reading; its own CPU per request is reported beside the server's.
    """
    total = int(rate * seconds)
    url = urlsplit(api)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = [prepare(url.netloc, *make_request(i)) for i in range(total)]
    is_home = [b"/home" in r.split(b" ", 2)[1] for r in requests]
    latencies: list[float] = []
    #: (second of the phase the request was scheduled in, latency, whether the page fell back for the model)
    timeline: list[tuple[int, float, bool]] = []
    statuses: dict[int, int] = {}
    sources: dict[str, int] = {}
    pool = RawHttpPool(host, port)
    await pool.open(PREOPENED_CONNECTIONS)

    async def one(i: int, scheduled: float) -> None:
        model_fallback = False
        try:
            status, body = await asyncio.wait_for(pool.get(requests[i]), timeout=10)
            if status == 200 and is_home[i] and (found := _SOURCE.search(body)):
                source = found.group(1).decode() + (f" ({found.group(2).decode()})" if found.group(2) else "")
                sources[source] = sources.get(source, 0) + 1
                model_fallback = found.group(1) == b"fallback" and found.group(2) != b"new_profile"
        except (OSError, TimeoutError):
            status = 0
        latencies.append(time.perf_counter() - scheduled)
        timeline.append((int(i / rate), latencies[-1], model_fallback))
        statuses[status] = statuses.get(status, 0) + 1

    cpu_before = time.process_time()
    start = time.perf_counter() + 0.1
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    pool.close()
    loadgen_ms = (time.process_time() - cpu_before) * 1000 / total
    p50, p99, worst = percentiles(latencies)
    return {"requests": total, "achieved_rate": total / sent_s, "p50": p50, "p99": p99, "max": worst,
            "statuses": statuses, "sources": sources, "loadgen_cpu_ms": loadgen_ms,
            "per_second": _per_second(timeline)}  # fmt: skip


def _per_second(timeline: list[tuple[int, float, bool]]) -> list[tuple[int, int, float, int]]:
    """(second, requests, p99 ms, pages that fell back while the model server was up) per second of a phase."""
    out = []
    for second in sorted({s for s, _, _ in timeline}):
        rows = [(latency, fell) for s, latency, fell in timeline if s == second]
        _, p99, _ = percentiles([latency for latency, _ in rows])
        out.append((second, len(rows), p99, sum(fell for _, fell in rows)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200", help="comma-separated request rates per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each load phase")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the first phase starts with every cache cold (each profile's first page in each API "
        "worker asks the model server), measured from its first second",
    )
    parser.add_argument("--accounts", type=int, default=40, help="accounts (two profiles each) for the load")
    parser.add_argument("--events", type=int, default=100_000, help="synthetic watch events in the lake")
    parser.add_argument(
        "--model-server",
        choices=["bentoml", "stand-in"],
        default="bentoml",
        help="bentoml: train the default models on the bench data and start `marquee serve models` (the real "
        "server); stand-in: a small Python server speaking the same contract (no training)",
    )
    parser.add_argument("--model-workers", type=int, default=2, help="BentoML worker processes")
    parser.add_argument("--api-workers", type=int, default=2, help="`marquee serve api --workers`")
    parser.add_argument(
        "--candidate-ttl", type=float, default=120.0, help="the API's candidate cache lifetime (0: no cache)"
    )
    parser.add_argument("--serving-url", default=None, help="a model server already running on this workspace")
    parser.add_argument("--netflix", type=Path, default=NETFLIX)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model-server-only", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model_server_only is not None:
        model_server_main(args.model_server_only, args.port)
        return
    if not args.netflix.exists():
        raise SystemExit(f"the Netflix catalog is missing at {args.netflix}; pass --netflix PATH")

    with tempfile.TemporaryDirectory(prefix="marquee-bench-api-") as tmp:
        home = Path(tmp) / "ws"
        print(f"loading {args.netflix.name} and {args.events:,} synthetic events...", file=sys.stderr, flush=True)
        fill_workspace(home, args.netflix, args.events, args.seed)
        search = bench_search(home, args.seed)
        print("\n## Search, in-process (embedded index, filters, re-ranking)\n")
        print("| titles | queries | with hits | p50 ms | p99 ms | max ms | index build + start-up s |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {search['titles']:,} | {search['queries']} | {search['with_hits']} | {search['p50']:.2f} | "
              f"{search['p99']:.2f} | {search['max']:.2f} | {search['startup_s']:.1f} |", flush=True)  # fmt: skip

        env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_LOG_LEVEL": "WARNING"}
        processes: list[subprocess.Popen[bytes]] = []
        try:
            serving_url = args.serving_url
            model_pid: int | None = None
            if serving_url is None and args.model_server == "bentoml":
                started = time.perf_counter()
                print("features and training (the default models, as `make demo`)...", file=sys.stderr, flush=True)
                for step in (["features", "apply"], ["features", "materialize"], ["train"]):
                    subprocess.run([sys.executable, "-m", "marquee", *step], env=env, cwd=REPO, check=True,
                                   stdout=subprocess.DEVNULL)  # fmt: skip
                print(f"trained in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
                port = free_port()
                serving_url = f"http://127.0.0.1:{port}"
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "marquee", "serve", "models", "--port", str(port),
                     "--workers", str(args.model_workers)],
                    env=env, cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True,
                ))  # fmt: skip
                wait_ready(serving_url, processes[-1], "marquee serve models")
                model_pid = processes[-1].pid
            elif serving_url is None:
                port = free_port()
                serving_url = f"http://127.0.0.1:{port}"
                processes.append(subprocess.Popen(
                    [sys.executable, __file__, "--model-server-only", str(home), "--port", str(port)], env=env
                ))  # fmt: skip
                wait_ready(serving_url, processes[-1], "model server stand-in", "/docs")
                model_pid = processes[-1].pid
            api_port = free_port()
            api = f"http://127.0.0.1:{api_port}"
            env["MARQUEE_SERVING_URL"] = serving_url
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "marquee", "serve", "api", "--port", str(api_port), "--export-every", "1",
                 "--candidate-ttl", str(args.candidate_ttl), "--workers", str(args.api_workers)],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL,
            ))  # fmt: skip
            wait_ready(api, processes[-1], "marquee serve api")
            from core.lake import Lake

            catalog_ids = list(Lake(home / "lake").read("titles", ["title_id"])["title_id"])
            print(f"creating {args.accounts} accounts with histories...", file=sys.stderr, flush=True)
            users = setup_users(api, args.accounts, args.seed, catalog_ids)
            print("load phases...", file=sys.stderr, flush=True)
            time.sleep(12)  # let the API export the new events and the model server re-read them

            def home_request(i: int) -> tuple[str, dict[str, str], dict[str, str]]:
                headers, profile_id = users[i % len(users)]
                return f"/v1/profiles/{profile_id}/home", {"device": "tv"}, headers

            def manifest_request(i: int) -> tuple[str, dict[str, str], dict[str, str]]:
                headers, profile_id = users[(i * 2) % len(users)]  # adult profiles
                title_id = catalog_ids[(i * 7919) % len(catalog_ids)]
                return f"/v1/playback/{title_id}/manifest", {"profile_id": profile_id, "device": "tv"}, headers

            rates = [float(r) for r in args.rates.split(",")]
            # Warm-up, gently (a running service is warm): about three pages per profile and API worker
            # (a profile's first page in a worker is a cold page: a model-server call and every row
            # built), then a few seconds at the first rate.
            if not args.cold:
                asyncio.run(open_loop(api, 20, 12, home_request))
                more = WARM_PAGES_PER_PROFILE * len(users) * args.api_workers - 20 * 12
                if more > 0:
                    asyncio.run(open_loop(api, 50, more / 50, home_request))
                asyncio.run(open_loop(api, rates[0], 3, home_request))
            api_pid = processes[-1].pid
            results = {}
            for rate in rates:
                for name, make in (("home rows", home_request), ("manifest", manifest_request)):
                    before, model_before = tree_cpu_seconds(api_pid), tree_cpu_seconds(model_pid)
                    calls_before = model_calls(serving_url)
                    result = asyncio.run(open_loop(api, rate, args.seconds, make))
                    after, model_after = tree_cpu_seconds(api_pid), tree_cpu_seconds(model_pid)
                    calls_after = model_calls(serving_url)
                    result["cache"] = (
                        f"{(calls_after - calls_before) / result['requests']:.2f}"
                        if calls_before is not None and calls_after is not None and name == "home rows"
                        else "—"
                    )
                    result["cpu_ms"] = (after - before) * 1000 / result["requests"] if before and after else None
                    result["model_cpu_ms"] = (
                        (model_after - model_before) * 1000 / result["requests"]
                        if model_before is not None and model_after is not None
                        else None
                    )
                    results[(name, rate)] = result
                    time.sleep(2)  # let queues drain between phases
        finally:
            for process in processes:
                stop(process)
        print(f"\n## Open-loop load on loopback, {args.seconds:.0f} s per phase, "
              f"API: {args.api_workers} uvicorn worker(s)\n")  # fmt: skip
        print("| endpoint | target req/s | achieved req/s | p50 ms | p99 ms | max ms | CPU ms/req: API | model server "
              "| load generator | statuses | home source | model calls per page |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for (name, rate), r in results.items():
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
            sources = ", ".join(f"{k}: {v}" for k, v in sorted(r["sources"].items())) or "—"
            cpu = f"{r['cpu_ms']:.1f}" if r["cpu_ms"] is not None else "—"
            model_cpu = f"{r['model_cpu_ms']:.1f}" if r["model_cpu_ms"] is not None else "—"
            loadgen, cache = f"{r['loadgen_cpu_ms']:.1f}", r["cache"]
            print(f"| {name} | {rate:.0f} | {r['achieved_rate']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                  f"{r['max']:.1f} | {cpu} | {model_cpu} | {loadgen} | {statuses} | {sources} | {cache} |")  # fmt: skip
        if args.cold:
            for (name, rate), r in results.items():
                if name != "home rows":
                    continue
                print(f"\nhome rows at {rate:.0f} req/s, second by second from a cold start:\n")
                print("| second | pages | p99 ms | fell back (model server up) |")
                print("|---|---|---|---|")
                for second, pages, p99, fell in r["per_second"]:
                    print(f"| {second} | {pages} | {p99:.1f} | {fell} |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        model = args.serving_url or (
            f"BentoML (`marquee serve models`, {args.model_workers} worker(s))"
            if args.model_server == "bentoml"
            else "stand-in (bench)"
        )
        print(f"\nmodel server: {model}")


if __name__ == "__main__":
    main()
