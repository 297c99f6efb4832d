"""Model-server cost with the viewer in every request: cold pages, throughput against an echo service, lake size.

Every request carries its viewer (``serving.contract.ViewerContext``), so the
model server's cost per page is the cost of a *cold* page: there is no profile
state to reuse. What it does:

1. workspace: ``--home DIR`` reuses one that ``marquee demo --no-serve`` built
   (synthetic lake, Feast features, ``marquee train``'s default champion:
   popularity, ALS, LightFM, item-kNN, seqknn and the neural ranker on online
   features); without it, one is built in a temporary folder the same way;
2. contexts: ``--profiles`` profiles of the lake turned into the context the
   API sends (latest 200 watches, ``core.rules``' completed rule, maturity,
   kids, country), so each request is another profile's;
3. in-process: CPU per cold home page (``recommend`` k=60 and ``similar`` k=60
   to the latest title, the API's row size × 3), one context each;
4. servers: a trivial BentoML echo service (same body, same number of workers)
   and the model server side by side, driven with ``wrk`` at 16 connections,
   each request another profile's body: req/s, p50/p99, errors, and the model
   server's CPU per request (all its processes, from ``psutil``);
5. lake size: the model server under light steady load while the lake grows
   from its size to ``--lake-max`` events by appended exports: CPU per request
   and resident memory at each size (the model server reads no watch events,
   so both should stay flat).

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_serving.py [--home .marquee] [--duration 15]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from core.lake import Lake  # noqa: E402
from core.ports import free_port  # noqa: E402
from core.rules import is_completed, progress, request_history  # noqa: E402
from core.settings import Settings  # noqa: E402
from serving.contract import ViewerContext, WatchedTitle  # noqa: E402

#: Titles per home row in the API (``catalog_api.options.row_size``) × 3, as the API asks.
PAGE_K = 60

ECHO_SERVICE = """
from typing import Any

import bentoml

@bentoml.service(workers=%d, traffic={"timeout": 10, "max_concurrency": 64}, logging={"access": {"enabled": False}})
class Echo:
    @bentoml.api
    async def echo(self, viewer: dict[str, Any], k: int = 10, variant: str = "champion",
                   similar: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"profile_id": viewer["profile_id"], "k": k}
"""

WRK_SCRIPT = """
local bodies = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(n %% #bodies) + 1])
end
"""


# ----------------------------------------------------------------- the workspace and the viewers


def ensure_workspace(home: Path | None, tmp: Path, scale: float) -> Settings:
    """The workspace to serve: ``home`` as it is, or a fresh ``marquee demo --no-serve`` one."""
    if home is not None:
        return Settings(home=home)
    home = tmp / "ws"
    env = {**os.environ, "MARQUEE_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "marquee", "demo", "--no-serve", "--scale", str(scale)],
        cwd=REPO_ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"built a workspace with `marquee demo --no-serve --scale {scale}` in {time.perf_counter() - started:.0f}s")
    return Settings(home=home)


def viewer_contexts(settings: Settings, n: int, seed: int) -> list[ViewerContext]:
    """The contexts the API would send for ``n`` random profiles of the lake (those with a history)."""
    lake = Lake(settings.workspace.lake_dir)
    events = lake.read("watch_events", ["profile_id", "title_id", "ts", "position_s", "duration_s"])
    profiles = lake.read("profiles").set_index("profile_id")
    accounts = lake.read_or_empty("accounts")
    country_of = dict(zip(accounts["account_id"], accounts["country"], strict=True)) if len(accounts) else {}
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(events["profile_id"].unique(), size=n, replace=False).tolist())
    mine = events[events["profile_id"].isin(chosen)].sort_values("ts")
    out = []
    for profile_id, group in mine.groupby("profile_id", sort=False):
        # What the API sends (core.rules.request_history): each title once at its latest watch, the newest only.
        latest = group.drop_duplicates("title_id", keep="last").set_index("title_id")
        latest = latest.loc[request_history(group["title_id"])]
        row = profiles.loc[profile_id]
        country = row["country"] if isinstance(row["country"], str) else country_of.get(row["account_id"])
        history = []
        for title_id, ts, position, duration in zip(
            latest.index, latest["ts"], latest["position_s"], latest["duration_s"], strict=True
        ):
            share = progress(position, duration)
            history.append(WatchedTitle(title_id=title_id, ts=ts, progress=share, completed=is_completed(share)))
        out.append(
            ViewerContext(
                profile_id=f"bench-{profile_id}",
                history=history,
                maturity_level=int(row["maturity_level"]),
                kids=bool(row["is_kids"]),
                country=country,
            )
        )
    return out


def page_body(context: ViewerContext, seed: str) -> str:
    """The JSON the API posts to ``/home_candidates`` for one page."""
    body = {"viewer": context.model_dump(mode="json"), "k": PAGE_K, "similar": {"title_id": seed, "k": PAGE_K}}
    return json.dumps(body, separators=(",", ":"))


# ----------------------------------------------------------------- in-process


def bench_pipeline(settings: Settings, contexts: list[ViewerContext]) -> dict[str, object]:
    """CPU and wall time per cold home page in-process (recommend + similar, each context once)."""
    from serving.loader import ModelLoader

    loader = ModelLoader(settings, poll_s=0, memo_s=0)
    started = time.perf_counter()
    loader.refresh()
    load_s = time.perf_counter() - started
    pipeline = loader.get().pipeline
    seeds = [pipeline.catalog.canonical(c.history[-1].title_id) for c in contexts]
    wall = np.empty(len(contexts))
    sources: dict[str, int] = {}
    cpu0 = time.process_time()
    for i, (context, seed) in enumerate(zip(contexts, seeds, strict=True)):
        t0 = time.perf_counter()
        result = pipeline.recommend(context, PAGE_K)
        with suppress(LookupError):
            pipeline.similar(context, seed, PAGE_K)
        wall[i] = time.perf_counter() - t0
        sources[result.source] = sources.get(result.source, 0) + 1
    cpu = time.process_time() - cpu0
    return {
        "load_s": load_s,
        "cpu_ms": cpu / len(contexts) * 1e3,
        "p50_ms": float(np.percentile(wall, 50) * 1e3),
        "p99_ms": float(np.percentile(wall, 99) * 1e3),
        "model_share": sources.get("model", 0) / len(contexts),
        "generators": ", ".join(pipeline.generators),
        "ranker": pipeline.ranker is not None,
        "online_features": pipeline.features is not None,
    }


# ----------------------------------------------------------------- servers


@contextmanager
def server(target: str, cwd: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``bentoml serve target`` on a free port until ready; killed (whole process group) at exit."""
    import httpx

    port = free_port()
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    with log.open("w") as out:
        process = subprocess.Popen(
            [bentoml, "serve", target, "--port", str(port), "--host", "127.0.0.1"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 240
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{target} exited:\n{log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target} not ready in 240s:\n{log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield base, process.pid
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until_idle(pid: int, *, share: float = 0.05, window_s: float = 1.0, limit_s: float = 180.0) -> float:
    """Wait until the server's processes use under ``share`` of a core over ``window_s``; the seconds waited.

    ``/readyz`` answers once the champion is loaded; each worker then warms it up and
    loads the challenger, a second or more of CPU per worker. Measured inside a run,
    that start-up work counted as CPU per request (py-spy: ~3 % of the busy samples).
    """
    started = time.monotonic()
    processes = process_tree(pid)
    before = cpu_seconds(processes)
    while time.monotonic() - started < limit_s:
        time.sleep(window_s)
        now = cpu_seconds(processes)
        if now - before < share * window_s:
            break
        before = now
    return time.monotonic() - started


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value.strip())
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def _lua_string(text: str) -> str:
    return f"[==[{text}]==]"


def write_script(bodies: list[str], path: Path) -> Path:
    path.write_text(WRK_SCRIPT % ",\n".join(_lua_string(b) for b in bodies))
    return path


def process_tree(pid: int) -> list[object]:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(processes: list[object]) -> float:
    """User + system CPU seconds of the processes (ones that exited count 0)."""
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()  # type: ignore[attr-defined]
            total += times.user + times.system
        except Exception:  # a process gone since: its time is lost, the sum is a lower bound
            continue
    return total


def rss_mib(processes: list[object]) -> float:
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss  # type: ignore[attr-defined]
        except Exception:
            continue
    return total / 2**20


def drive_wrk(url: str, script: Path, concurrency: int, duration: int, pid: int | None = None) -> dict[str, float]:
    """Closed-loop load with wrk (one thread, ``concurrency`` connections); server CPU per request if ``pid``."""
    procs = process_tree(pid) if pid else []
    cpu0 = cpu_seconds(procs)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(procs) - cpu0
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, flags=re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency.get("50", "nan")),
        "p99_ms": _ms(latency.get("99", "nan")),
        "errors": float(errors.group(1) if errors else 0) + float(timeouts.group(1) if timeouts else 0),
        "requests": float(requests),
        "cpu_ms_per_request": cpu / max(requests, 1) * 1e3 if pid else float("nan"),
    }


def drive_async(
    url: str, bodies: list[str], concurrency: int, duration: int, pid: int | None = None
) -> dict[str, float]:
    """The same closed loop with an asyncio httpx client, when wrk is absent (a slower client)."""
    import asyncio

    import httpx

    procs = process_tree(pid) if pid else []
    cpu0 = cpu_seconds(procs)

    async def run() -> dict[str, float]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + duration

        async def worker(client: httpx.AsyncClient, offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await client.post(
                    url, content=bodies[i % len(bodies)], headers={"Content-Type": "application/json"}
                )
                latencies.append(time.perf_counter() - t0)
                errors += response.status_code != 200
                i += concurrency

        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=10) as client:
            await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
        arr = np.array(latencies)
        return {
            "rps": len(arr) / duration,
            "p50_ms": float(np.percentile(arr, 50) * 1e3),
            "p99_ms": float(np.percentile(arr, 99) * 1e3),
            "errors": float(errors),
            "requests": float(len(arr)),
        }

    result = asyncio.run(run())
    cpu = cpu_seconds(procs) - cpu0
    result["cpu_ms_per_request"] = cpu / max(result["requests"], 1) * 1e3 if pid else float("nan")
    return result


def drive(
    url: str, bodies: list[str], script: Path, concurrency: int, duration: int, pid: int | None
) -> dict[str, float]:
    if shutil.which("wrk"):
        return drive_wrk(url, script, concurrency, duration, pid)
    return drive_async(url, bodies, concurrency, duration, pid)


# ----------------------------------------------------------------- lake size


def grow_lake(lake: Lake, target: int, step: int, seed: int) -> Iterator[int]:
    """Append exports of ``step`` events (copies of existing ones, new ids) until ``target``; yields the sizes."""
    base = lake.read("watch_events")
    size = len(base)
    yield size
    rng = np.random.default_rng(seed)
    round_ = 0
    while size < target:
        round_ += 1
        part = base.sample(n=min(step, target - size), replace=True, random_state=int(rng.integers(2**31)))
        part = part.assign(event_id=[f"bench-{round_}-{i}" for i in range(len(part))])
        part["ts"] = pd.Timestamp.now(tz="UTC").floor("s")
        lake.write("watch_events", part, mode="append")
        size += len(part)
        yield size


def bench_lake_size(
    settings: Settings, url: str, pid: int, script: Path, bodies: list[str], args: argparse.Namespace
) -> list[dict[str, float]]:
    """CPU per request and RSS of the model server at each lake size, under light steady load."""
    rows = []
    lake = Lake(settings.workspace.lake_dir)
    for size in grow_lake(lake, args.lake_max, args.lake_step, args.seed):
        result = drive(url, bodies, script, 4, args.lake_interval, pid)
        rows.append({"events": float(size), "rss_mib": rss_mib(process_tree(pid)), **result})
    return rows


# ----------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a workspace `marquee demo --no-serve` built (default: build one)")
    parser.add_argument("--scale", type=float, default=0.2, help="data scale when building the workspace")
    parser.add_argument("--profiles", type=int, default=2000, help="distinct viewers (one context each)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of both services")
    parser.add_argument("--lake-max", type=int, default=2_000_000, help="events in the lake at the end")
    parser.add_argument("--lake-step", type=int, default=200_000, help="events per appended export")
    parser.add_argument("--lake-interval", type=int, default=6, help="seconds of load at each lake size")
    parser.add_argument("--no-lake", action="store_true", help="skip the lake-size part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marquee-bench-serving-"))
    try:
        settings = ensure_workspace(args.home, tmp, args.scale)
        if args.home is not None and not args.no_lake:
            # the lake part appends events: work on a copy, never on the caller's workspace
            copy = tmp / "ws"
            shutil.copytree(args.home, copy, symlinks=True)
            settings = Settings(home=copy)
        contexts = viewer_contexts(settings, args.profiles, args.seed)
        inproc = bench_pipeline(settings, contexts)
        from serving.catalog import load_catalog

        catalog = load_catalog(Lake(settings.workspace.lake_dir))
        bodies = [page_body(c, catalog.canonical(c.history[-1].title_id)) for c in contexts]
        recommend_bodies = [json.dumps({"viewer": c.model_dump(mode="json"), "k": PAGE_K}) for c in contexts]
        script = write_script(bodies, tmp / "page.lua")
        recommend_script = write_script(recommend_bodies, tmp / "recommend.lua")

        (tmp / "echo").mkdir()
        (tmp / "echo" / "echo_service.py").write_text(ECHO_SERVICE % args.workers)
        env = {
            **os.environ,
            "MARQUEE_HOME": str(settings.workspace.home),
            "MARQUEE_SERVING_WORKERS": str(args.workers),
            "OPENBLAS_NUM_THREADS": "1",
            "BENTOML_DO_NOT_TRACK": "True",
            "MARQUEE_SERVING_MEMO_S": "0",  # every request cold: no answer remembered between requests
            "PYTHONPATH": str(REPO_ROOT),
        }
        rows: list[dict[str, object]] = []
        lake_rows: list[dict[str, float]] = []
        with (
            server("echo_service:Echo", tmp / "echo", env, tmp / "echo.log") as (echo_url, echo_pid),
            server("serving.service:MarqueeRecommender", REPO_ROOT, env, tmp / "marquee.log") as (url, pid),
        ):
            runs = (
                ("echo (same body)", f"{echo_url}/echo", bodies, script, echo_pid),
                ("/home_candidates", f"{url}/home_candidates", bodies, script, pid),
                ("/recommend", f"{url}/recommend", recommend_bodies, recommend_script, pid),
                ("echo again", f"{echo_url}/echo", bodies, script, echo_pid),
            )
            for pid_ in (echo_pid, pid):
                wait_until_idle(pid_)
            for name, target, payloads, lua, server_pid in runs:
                drive(target, payloads, lua, args.connections, 3, None)  # warm-up (neighbour cache, JIT-less paths)
                result = drive(target, payloads, lua, args.connections, args.duration, server_pid)
                rows.append({"service": name, **result})
            if not args.no_lake:
                lake_rows = bench_lake_size(settings, f"{url}/home_candidates", pid, script, bodies, args)

        print(
            f"\nchampion: {inproc['generators']}; ranker {'on' if inproc['ranker'] else 'off'}, "
            f"online title features {'on' if inproc['online_features'] else 'off'}; k={PAGE_K}"
        )
        print(f"{len(contexts):,} viewers, each request another viewer's context; "
              f"load generator {'wrk' if shutil.which('wrk') else 'httpx (wrk not found)'}, "
              f"{args.connections} connections, {args.duration}s per run")  # fmt: skip
        print(f"workers per service: {args.workers}; CPU cores: {os.cpu_count()}; "
              f"load average at the end: {os.getloadavg()[0]:.1f}\n")  # fmt: skip
        # The echo's CPU per request is the same framework work on the same machine: a figure in its units
        # compares runs on machines of different speed (one session's 2-core machine ran the same code
        # 2x slower than another's), where milliseconds alone do not.
        echo_rows = [r for r in rows if str(r["service"]).startswith("echo")]
        echo_cpu = float(np.mean([float(r["cpu_ms_per_request"]) for r in echo_rows]))  # type: ignore[arg-type]
        print("| service | req/s | p50 ms | p99 ms | errors | server CPU ms / request | × echo's CPU |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['service']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{row['errors']:.0f} | {row['cpu_ms_per_request']:.2f} | "
                f"{float(row['cpu_ms_per_request']) / echo_cpu:.2f} |"  # type: ignore[arg-type]
            )
        echo = float(np.mean([float(r["rps"]) for r in echo_rows]))  # type: ignore[arg-type]
        for name in ("/home_candidates", "/recommend"):
            rps = next(float(r["rps"]) for r in rows if r["service"] == name)  # type: ignore[arg-type]
            print(f"\n{name} / echo throughput: {rps / echo:.2f}x (echo: mean of the two echo runs)", end="")
        print(
            f"\n\nin-process cold page (recommend k={PAGE_K} + similar k={PAGE_K}), {len(contexts):,} viewers: "
            f"CPU {inproc['cpu_ms']:.2f} ms per page, wall p50 {inproc['p50_ms']:.2f} ms, "
            f"p99 {inproc['p99_ms']:.2f} ms "
            f"({inproc['model_share']:.0%} personal); model load {inproc['load_s']:.1f}s"
        )
        if lake_rows:
            print("\nno cost in lake size (model server under 4 connections of /home_candidates while exports land):\n")
            print("| events in the lake | req/s | p99 ms | server CPU ms / request | server RSS MiB |")
            print("|---|---|---|---|---|")
            for lake_row in lake_rows:
                print(
                    f"| {lake_row['events']:,.0f} | {lake_row['rps']:.0f} | {lake_row['p99_ms']:.1f} | "
                    f"{lake_row['cpu_ms_per_request']:.2f} | {lake_row['rss_mib']:.0f} |"
                )
        if args.json:
            args.json.write_text(json.dumps({"http": rows, "in_process": inproc, "lake": lake_rows}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
