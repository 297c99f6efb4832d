"""Model-server latency and throughput, next to a trivial BentoML echo service in the same run.

What it does, on a fresh temporary workspace:

1. builds a synthetic catalog of 10,000 titles and 5,000 profiles with histories,
   fits popularity + implicit ALS with 64 factors and a neural ranker on their
   candidate columns, registers the bundle as champion (online Feast features are
   left out here: the feature store has its own benchmark);
2. times the in-process pipeline (candidates → features → ranking → filters) for k=10;
3. starts two real servers side by side: an echo BentoML service (the framework's
   floor) and ``serving.service:MarqueeRecommender``;
4. drives each over loopback with ``wrk`` (or an httpx client when wrk is absent)
   at concurrency 1 and 16, and prints p50/p99 and req/s;
5. profiles the pipeline with pyinstrument and prints where the time goes.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_serving.py [--duration 10] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from core.lake import Lake  # noqa: E402
from core.settings import Settings  # noqa: E402
from features.ranking_frame import candidate_columns  # noqa: E402
from models.base import CandidateGenerator, Interactions, Ranker  # noqa: E402
from models.bundle import ModelBundle  # noqa: E402
from models.registry import model_class  # noqa: E402

ECHO_SERVICE = """
import bentoml

@bentoml.service(traffic={"timeout": 10, "max_concurrency": 64}, logging={"access": {"enabled": False}})
class Echo:
    @bentoml.api
    async def echo(self, profile_id: str, k: int = 10) -> dict:
        return {"profile_id": profile_id, "k": k}
"""

WRK_SCRIPT = """
local ids = {%s}
local n = 0
request = function()
  n = n + 1
  local body = '{"profile_id": "' .. ids[(n %% #ids) + 1] .. '", "k": 10}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


# ----------------------------------------------------------------- the world


def build_world(settings: Settings, n_titles: int, n_profiles: int, per_profile: int, seed: int) -> list[str]:
    """Synthetic lake: clustered tastes, Zipf popularity, a few kids profiles and regional licences."""
    rng = np.random.default_rng(seed)
    title_ids = np.array([f"t{i:05d}" for i in range(n_titles)])
    levels = rng.choice([0, 1, 2, 3], size=n_titles, p=[0.15, 0.15, 0.3, 0.4])
    countries = [["FR", "DE"] if rng.random() < 0.1 else [] for _ in range(n_titles)]
    lake = Lake(settings.workspace.lake_dir)
    lake.write(
        "titles",
        pd.DataFrame(
            {
                "title_id": title_ids,
                "type": "movie",
                "title": title_ids,
                "maturity_level": levels,
                "countries": countries,
            }
        ),
    )
    profile_ids = np.array([f"p{i:05d}" for i in range(n_profiles)])
    kids = rng.random(n_profiles) < 0.1
    lake.write(
        "profiles",
        pd.DataFrame(
            {
                "profile_id": profile_ids,
                "account_id": profile_ids,
                "name": profile_ids,
                "maturity_level": np.where(kids, 0, 3),
                "is_kids": kids,
                "country": rng.choice(["US", "FR", "GB"], size=n_profiles),
            }
        ),
    )
    n_clusters = 50
    cluster_of_title = rng.integers(0, n_clusters, size=n_titles)
    members = [np.flatnonzero(cluster_of_title == c) for c in range(n_clusters)]
    popularity = 1.0 / np.arange(1, n_titles + 1) ** 0.8
    users, items = [], []
    for p, cluster in zip(profile_ids, rng.integers(0, n_clusters, size=n_profiles), strict=True):
        own = members[cluster]
        k_own = int(per_profile * 0.7)
        picks = np.concatenate(
            [
                rng.choice(own, size=min(k_own, len(own)), replace=False),
                rng.choice(n_titles, size=per_profile - k_own, replace=False, p=popularity / popularity.sum()),
            ]
        )
        users += [p] * len(picks)
        items += title_ids[picks].tolist()
    n = len(users)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 86400, size=n), unit="s")
    lake.write(
        "watch_events",
        pd.DataFrame(
            {
                "event_id": [f"e{i}" for i in range(n)],
                "profile_id": users,
                "title_id": items,
                "ts": ts,
                "position_s": rng.integers(0, 6000, size=n),
                "duration_s": 6000,
            }
        ),
    )
    return profile_ids.tolist()


def train_and_register(settings: Settings, tmp: Path, factors: int) -> str:
    """Fit popularity + ALS on the lake's events and register them as champion."""
    from mlflow import MlflowClient

    events = Lake(settings.workspace.lake_dir).read("watch_events")
    interactions = Interactions(
        user_ids=events["profile_id"].to_numpy(dtype=str),
        item_ids=events["title_id"].to_numpy(dtype=str),
        timestamps=(events["ts"].astype("int64") // 10**9).to_numpy(dtype=np.int64),
        weights=np.ones(len(events), dtype=np.float32),
    )
    started = time.perf_counter()
    popularity = model_class("popularity")().fit(interactions)  # type: ignore[call-arg]
    als = model_class("als")(factors=factors, iterations=10).fit(interactions)  # type: ignore[call-arg]
    elapsed = time.perf_counter() - started
    print(f"fitted popularity + ALS({factors} factors) on {len(events):,} events in {elapsed:.1f}s")
    candidates = {"popularity": popularity, "als": als}
    columns = candidate_columns(list(candidates))
    ranker = fit_ranker(events, candidates, columns)  # type: ignore[arg-type]
    metadata = {"primary_candidate": "als", "ranker_columns": columns, "ranker_used": True, "candidate_k": 50}
    bundle = ModelBundle(candidates=candidates, ranker=ranker, metadata=metadata)  # type: ignore[arg-type]
    folder = bundle.save(tmp / "bundle")
    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    client.create_registered_model(settings.registered_model)
    experiment_id = client.create_experiment("bench", artifact_location=settings.mlflow_artifact_root)
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "bundle")
    version = client.create_model_version(
        settings.registered_model, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id
    )
    client.set_registered_model_alias(settings.registered_model, "champion", version.version)
    return str(version.version)


def fit_ranker(events: pd.DataFrame, candidates: dict[str, CandidateGenerator], columns: list[str]) -> Ranker:
    """A neural ranker on the candidate columns, taught to find each profile's held-out last watch."""
    from models.ranker import NeuralRanker
    from serving.ranking import ranking_matrix

    started = time.perf_counter()
    ordered = events.sort_values(["profile_id", "ts"])
    blocks, groups, labels = [], [], []
    for g, (_, titles) in enumerate(ordered.groupby("profile_id")["title_id"]):
        if g == 1000:
            break
        history, target = titles.tolist()[:-1], titles.tolist()[-1]
        lists = {}
        for role, model in candidates.items():
            rec = model.recommend("", 50, history=history)
            lists[role] = (rec.item_ids.tolist(), rec.scores.tolist())
        title_ids = list(dict.fromkeys(t for ids, _ in lists.values() for t in ids))
        blocks.append(ranking_matrix(columns, title_ids, lists, {}, {}))
        groups += [g] * len(title_ids)
        labels += [float(t == target) for t in title_ids]
    ranker = NeuralRanker(epochs=3, seed=0).fit(
        np.vstack(blocks), np.array(groups, dtype=np.int64), np.array(labels, dtype=np.float32), columns
    )
    print(f"fitted the neural ranker on {len(labels):,} candidate rows in {time.perf_counter() - started:.1f}s")
    return ranker


# ----------------------------------------------------------------- in-process


def bench_pipeline(settings: Settings, profile_ids: list[str], calls: int, seed: int) -> dict[str, float]:
    """p50/p99 of ``pipeline.recommend(k=10)`` in-process, plus a pyinstrument profile."""
    from serving.loader import ModelLoader

    loader = ModelLoader(settings, poll_s=0)
    started = time.perf_counter()
    loader.refresh()
    load_s = time.perf_counter() - started
    pipeline = loader.get().pipeline
    rng = np.random.default_rng(seed)
    asked = rng.choice(profile_ids, size=calls)
    for p in asked[:200]:
        pipeline.recommend(str(p), 10)
    times = np.empty(calls)
    sources: dict[str, int] = {}
    for i, p in enumerate(asked):
        t0 = time.perf_counter()
        result = pipeline.recommend(str(p), 10)
        times[i] = time.perf_counter() - t0
        sources[result.source] = sources.get(result.source, 0) + 1
    unknown = np.empty(500)
    for i in range(len(unknown)):
        t0 = time.perf_counter()
        pipeline.recommend(f"unknown-{i}", 10)
        unknown[i] = time.perf_counter() - t0
    stats = {
        "load_s": load_s,
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "mean_ms": float(times.mean() * 1e3),
        "fallback_p50_ms": float(np.percentile(unknown, 50) * 1e3),
        "model_share": sources.get("model", 0) / calls,
    }
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("(pyinstrument not installed: pip install pyinstrument to see the profile)")
        return stats
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for p in asked[:2000]:
        pipeline.recommend(str(p), 10)
    profiler.stop()
    print("\npyinstrument, 2,000 in-process recommend calls (k=10):")
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    print("\n".join(text.splitlines()[:60]))
    return stats


# ----------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{target} exited:\n{log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target} not ready in 180s:\n{log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield base, process.pid
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value.strip())
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def drive_wrk(url: str, profile_ids: list[str], concurrency: int, duration: int, tmp: Path) -> dict[str, float]:
    """Closed-loop load with wrk: ``concurrency`` connections on one thread."""
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f'"{p}"' for p in profile_ids))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, flags=re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency.get("50", "nan")),
        "p99_ms": _ms(latency.get("99", "nan")),
        "errors": float(errors.group(1) if errors else 0) + float(timeouts.group(1) if timeouts else 0),
    }


def drive_httpx(url: str, profile_ids: list[str], concurrency: int, duration: int) -> dict[str, float]:
    """Fallback load generator when wrk is absent (slower client: the server's numbers look worse)."""
    import asyncio

    import httpx

    async def run() -> dict[str, float]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + duration

        async def worker(client: httpx.AsyncClient, offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await client.post(url, json={"profile_id": profile_ids[i % len(profile_ids)], "k": 10})
                latencies.append(time.perf_counter() - t0)
                errors += response.status_code != 200
                i += concurrency

        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(*(worker(client, i) for i in range(concurrency)))
        arr = np.array(latencies)
        return {
            "rps": len(arr) / duration,
            "p50_ms": float(np.percentile(arr, 50) * 1e3),
            "p99_ms": float(np.percentile(arr, 99) * 1e3),
            "errors": float(errors),
        }

    return asyncio.run(run())


#: What each part of the server's time is, by the function or file a stack passes through.
PROFILE_BUCKETS = {
    "whole request (BentoML + Starlette + uvicorn)": "request_response",
    "  our API method (service.py)": "MarqueeRecommender.recommend",
    "    pipeline: candidates (model recommend calls)": "RecommendationPipeline._generate",
    "    pipeline: ranking matrix (serving/ranking.py)": "ranking_matrix",
    "    pipeline: ranker (torch MLP)": "NeuralRanker.score",
    "    pipeline: business filters": "RecommendationPipeline._take",
    "  response model building (pydantic)": "_items (",
    "  response out (Response.__call__ through the middlewares)": "Response.__call__",
    "  request body parse + validation": "from_http_request",
}


def profile_server(server_pid: int, url: str, profile_ids: list[str], tmp: Path, seconds: int = 8) -> dict[str, float]:
    """py-spy the model server's worker under wrk load; share of samples per bucket."""
    import psutil

    workers = psutil.Process(server_pid).children(recursive=True)
    if not workers:
        return {}
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f'"{p}"' for p in profile_ids))
    load = subprocess.Popen(
        ["wrk", "-t1", "-c16", f"-d{seconds + 3}s", "-s", str(script), url], stdout=subprocess.DEVNULL
    )
    time.sleep(1)
    raw = tmp / "spy.txt"
    result = subprocess.run(
        [
            spy,
            "record",
            "-p",
            str(workers[0].pid),
            "-d",
            str(seconds),
            "-r",
            "200",
            "--format",
            "raw",
            "-o",
            str(raw),
            "--nonblocking",
        ],
        capture_output=True,
        text=True,
    )
    load.wait()
    if result.returncode != 0 or not raw.exists():
        print(f"(py-spy failed: {result.stderr.strip()[-300:]})")
        return {}
    counts = dict.fromkeys(PROFILE_BUCKETS, 0)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for label, needle in PROFILE_BUCKETS.items():
            if needle in stack:
                counts[label] += int(n)
    return {label: c / total for label, c in counts.items()} if total else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=10_000)
    parser.add_argument("--profiles", type=int, default=5_000)
    parser.add_argument("--per-profile", type=int, default=30)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--workers", type=int, default=2, help="model server worker processes")
    parser.add_argument("--calls", type=int, default=5_000, help="in-process recommend calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marquee-bench-serving-"))
    try:
        settings = Settings(home=tmp / "ws")
        settings.workspace.ensure()
        profile_ids = build_world(settings, args.titles, args.profiles, args.per_profile, args.seed)
        version = train_and_register(settings, tmp, args.factors)
        inproc = bench_pipeline(settings, profile_ids, args.calls, args.seed)

        (tmp / "echo").mkdir()
        (tmp / "echo" / "echo_service.py").write_text(ECHO_SERVICE)
        env = {
            **os.environ,
            "MARQUEE_HOME": str(settings.workspace.home),
            "MARQUEE_SERVING_WORKERS": str(args.workers),
            "OPENBLAS_NUM_THREADS": "1",
            "BENTOML_DO_NOT_TRACK": "True",
        }
        use_wrk = shutil.which("wrk") is not None
        sample = profile_ids[:2000]
        rows: list[dict[str, object]] = []
        breakdown: dict[str, float] = {}
        with (
            server("echo_service:Echo", tmp / "echo", env, tmp / "echo.log") as (echo_url, _),
            server("serving.service:MarqueeRecommender", REPO_ROOT, env, tmp / "marquee.log") as (marquee_url, pid),
        ):
            for name, url in (("echo", f"{echo_url}/echo"), ("recommend", f"{marquee_url}/recommend")):
                for concurrency in (1, 16):
                    if use_wrk:
                        drive_wrk(url, sample, concurrency, 2, tmp)  # warm-up
                        result = drive_wrk(url, sample, concurrency, args.duration, tmp)
                    else:
                        result = drive_httpx(url, sample, concurrency, args.duration)
                    rows.append({"service": name, "concurrency": concurrency, **result})
            if use_wrk and (shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")):
                breakdown = profile_server(pid, f"{marquee_url}/recommend", sample, tmp)

        print(
            f"\nmodel version {version}: popularity + ALS({args.factors}) + neural ranker, {args.titles:,} titles, k=10"
        )
        print(f"load generator: {'wrk' if use_wrk else 'httpx (wrk not found)'}, {args.duration}s per run, loopback")
        print(f"model server workers: {args.workers}; CPU cores: {os.cpu_count()}\n")
        print("| service | concurrency | p50 ms | p99 ms | req/s | errors |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['service']} | {row['concurrency']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                f"{row['rps']:.0f} | {row['errors']:.0f} |"
            )
        echo16 = next(r for r in rows if r["service"] == "echo" and r["concurrency"] == 16)
        rec16 = next(r for r in rows if r["service"] == "recommend" and r["concurrency"] == 16)
        print(f"\nrecommend / echo throughput at concurrency 16: {rec16['rps'] / echo16['rps']:.0%}")  # type: ignore[operator]
        print(
            f"in-process pipeline, k=10, {args.calls:,} calls: p50 {inproc['p50_ms']:.2f} ms, "
            f"p99 {inproc['p99_ms']:.2f} ms, mean {inproc['mean_ms']:.2f} ms "
            f"({inproc['model_share']:.0%} personal); unknown-profile fallback p50 {inproc['fallback_p50_ms']:.3f} ms; "
            f"model load {inproc['load_s']:.1f}s"
        )
        if breakdown:
            print("\nwhere a /recommend request's server CPU goes (py-spy, concurrency 16, share of samples):")
            for label, share in breakdown.items():
                print(f"  {share:6.1%}  {label}")
        if args.json:
            args.json.write_text(json.dumps({"http": rows, "in_process": inproc}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
