"""Capacity inputs measured on this machine: what each stage costs per event, and how it grows.

Measured here (every number in wall seconds and in CPU seconds of the process tree,
since a shared machine inflates wall time but not CPU time):

(a) the exporter (``catalog_api.export.export_events_to_lake``): watch events copied
    from the API database into the lake, events/s, and the lake's bytes per event;
(b) per size of synthetic service (``--events``, default 1M and 3M; titles and profiles
    grow with it as in ``marquee data generate --scale``), each step as the CLI runs it,
    in a fresh workspace, with ``MARQUEE_ENGINE`` set to ``--engine``:
    ``marquee data generate`` (lake bytes per event), ``marquee features materialize``
    (the feature tables' build time, then the online write) and ``marquee train``
    (default candidate models and the neural ranker);
(c) the online store's bytes per key in Redis (the feature rows of one size, written by
    ``features.store.materialize`` into a throw-away Feast project) and a login-limit key's
    bytes (``catalog_api.security.rate_limit``);
(d) the per-replica throughput of the model server and the API, read from the last
    results of ``bench/bench_serving.py`` and ``bench/bench_api.py`` (not rerun here).

A power law ``seconds = c · (events / 1M) ** b`` is fitted to each step over the sizes
run, for the capacity model in docs/capacity.md.

    python bench/bench_capacity.py                          # pandas engine, 1M and 3M events
    python bench/bench_capacity.py --engine spark --events 1000000
    python bench/bench_capacity.py --events 1000000,3000000,10000000 --exporter-events 200000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_json import write_results  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ENGINES = ("pandas", "spark")


@dataclass
class Step:
    """One CLI step: wall and CPU seconds of its process tree, its peak RSS and what it printed."""

    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    output: str = ""
    detail: dict[str, float] = field(default_factory=dict)


def run_step(name: str, args: list[str], env: Mapping[str, str], timeout_s: float) -> Step:
    """Run ``python -m marquee ARGS`` and measure it (``os.wait4`` gives the child tree's rusage)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "marquee", *args], cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.2)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"marquee {' '.join(args)} failed ({process.returncode}) after {wall:.0f} s:\n{tail}")
    # Linux reports ru_maxrss in KiB.
    return Step(name, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text)


def bytes_under(root: Path, table: str) -> int:
    """Bytes of every file under ``root`` whose path names ``table`` (folder-of-parts, Iceberg or Delta layouts)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and table in p.relative_to(root).parts[0:3])


def measure_size(
    events: int, engine: str, models: str, timeout_s: float, redis_url: str | None, train_step: bool = True
) -> dict[str, Any]:
    """Generate, materialize and train at one size in a fresh workspace (and measure Redis on its lake)."""
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        home = Path(tmp) / "ws"
        env = {
            **os.environ,
            "MARQUEE_HOME": str(home),
            "MARQUEE_ENGINE": engine,
            "PYTHONPATH": str(ROOT),
            "MARQUEE_LOG_LEVEL": "WARNING",
        }
        scale = f"{events / 1_000_000:g}"
        print(f"[{events:,} events] generate ...", file=sys.stderr, flush=True)
        generate = run_step("generate", ["data", "generate", "--scale", scale, "--events", str(events)], env, timeout_s)
        lake = home / "lake"
        lake_bytes = bytes_under(lake, "watch_events")

        print(f"[{events:,} events] features materialize ...", file=sys.stderr, flush=True)
        features = run_step("features materialize", ["features", "materialize"], env, timeout_s)
        found = re.search(r"feature tables in ([\d.]+) s; materialized in ([\d.]+) s", features.output)
        if found:
            features.detail = {"feature_tables_s": float(found.group(1)), "materialize_s": float(found.group(2))}

        steps = [generate, features]
        if train_step:
            print(f"[{events:,} events] train ...", file=sys.stderr, flush=True)
            train = run_step("train", ["train", "--models", models], env, timeout_s)
            found = re.search(r"time: ([\d.]+)s wall \((.*)\)", train.output)
            if found:
                train.detail = {"pipeline_s": float(found.group(1))}
                for stage in found.group(2).split(", "):
                    name, _, seconds = stage.rpartition(" ")
                    train.detail[name] = float(seconds.rstrip("s"))
            steps.append(train)
        profiles = re.search(r"([\d,]+) profiles", generate.output)
        redis_part = None
        if redis_url:
            print(f"[{events:,} events] online features into Redis ...", file=sys.stderr, flush=True)
            redis_part = bench_redis(home, redis_url)
        return {
            "redis": redis_part,
            "events": events,
            "profiles": int(profiles.group(1).replace(",", "")) if profiles else None,
            "lake_bytes_per_event": lake_bytes / events,
            "steps": [{k: v for k, v in step.__dict__.items() if k != "output"} for step in steps],
        }


def bench_exporter(n: int, database_url: str | None) -> dict[str, Any]:
    """Export ``n`` watch events from a fresh API database into a fresh lake; events/s and bytes/event."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    from sqlalchemy import insert, text

    from catalog_api.db.engine import make_engine, make_session_factory, migrate, session_scope
    from catalog_api.db.tables import AccountRow, ProfileRow, WatchEventRow
    from catalog_api.export import export_events_to_lake
    from core.lake import Lake

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        schema = None
        if database_url:
            schema = f"bench_export_{uuid.uuid4().hex[:10]}"
            admin = make_engine(database_url)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = database_url
        else:
            url = f"sqlite:///{tmp}/api.db"
        engine = make_engine(url, schema=schema)
        try:
            migrate(engine)
            rng = np.random.default_rng(0)
            now = datetime(2026, 1, 1, tzinfo=UTC)
            n_profiles = 2000
            with engine.begin() as connection:
                connection.execute(
                    insert(AccountRow.__table__),
                    [
                        {"account_id": "a0", "email": "bench@example.com", "password_hash": "x", "country": "US"}
                        | {"plan": "standard", "is_admin": False, "created_at": now}
                    ],
                )
                connection.execute(
                    insert(ProfileRow.__table__),
                    [
                        {"profile_id": f"p{i}", "account_id": "a0", "name": f"p{i}", "language": "en"}
                        | {"maturity_level": 4, "is_kids": False, "country": "US", "created_at": now}
                        for i in range(n_profiles)
                    ],
                )
            profiles = rng.integers(0, n_profiles, n)
            titles = rng.zipf(1.3, n) % 50_000
            seconds = np.sort(rng.integers(0, 30 * 86400, n))
            for start in range(0, n, 20_000):
                rows = [
                    {
                        "event_id": uuid.uuid4().hex,
                        "profile_id": f"p{profiles[i]}",
                        "title_id": f"t{titles[i]}",
                        "ts": now + timedelta(seconds=int(seconds[i])),
                        "position_s": int(rng.integers(0, 3600)),
                        "duration_s": 3600,
                        "device": "tv",
                        "country": "US",
                    }
                    for i in range(start, min(n, start + 20_000))
                ]
                with engine.begin() as connection:
                    connection.execute(insert(WatchEventRow.__table__), rows)
            lake = Lake(Path(tmp) / "lake")
            factory = make_session_factory(engine)
            started, started_cpu = time.perf_counter(), time.process_time()
            with session_scope(factory) as session:
                exported = export_events_to_lake(session, lake)
            wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
            lake_bytes = bytes_under(Path(tmp) / "lake", "watch_events")
        finally:
            engine.dispose()
            if schema:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    return {
        "database": engine.dialect.name,
        "events": exported,
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_s": exported / wall,
        "events_per_cpu_s": exported / cpu,
        "lake_bytes_per_event": lake_bytes / max(exported, 1),
    }


def bench_exposures(pages: int, profiles: int = 1_000_000, titles: int = 50_000) -> dict[str, Any]:
    """Lake bytes per exposure row: ``pages`` home pages (6 rows of 20 titles) through the API's own flush path.

    Pages are built as the API buffers them (``ExposurePage``), expanded by ``pages_table`` and
    appended with ``Lake.write``, in flushes of 500 pages like the API's buffer. Titles are drawn
    uniformly from 50k (the most entropy a personalised page can have), so the bytes are an upper bound.
    """
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from catalog_api.services.exposures import ExposurePage, pages_table
    from core.lake import Lake

    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    row_keys = ["continue", "top-picks", "trending", "because-you-watched", "genre:drama", "genre:comedy"]
    with tempfile.TemporaryDirectory(prefix="bench-exposures-") as tmp:
        lake = Lake(Path(tmp) / "lake")
        rows = 0
        started, started_cpu = time.perf_counter(), time.process_time()
        for flush in range(0, pages, 500):
            batch = [
                ExposurePage(
                    request_id=uuid.uuid4().hex,
                    ts=start + timedelta(seconds=int(flush + i) * 3),
                    profile_id=f"profile-{rng.integers(profiles)}",
                    rows=[(key, "7", [f"title-{t}" for t in rng.integers(0, titles, 20)]) for key in row_keys],
                    assignments=[("ranker-challenger", "treatment")] if rng.random() < 0.5 else [],
                )
                for i in range(min(500, pages - flush))
            ]
            rows += lake.write("exposures", pages_table(batch), mode="append")
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        lake_bytes = bytes_under(Path(tmp) / "lake", "exposures")
    return {
        "pages": pages,
        "rows": rows,
        "rows_per_page": rows / pages,
        "lake_bytes_per_row": lake_bytes / rows,
        "rows_per_cpu_s": rows / cpu,
        "wall_s": wall,
    }


def bench_redis(home: Path, redis_url: str) -> dict[str, Any]:
    """Bytes per online-store key in Redis (Feast's layout) and per login-limit key.

    The feature rows are those of the workspace ``home``'s lake, written by ``materialize``
    into a throw-away Feast project whose keys are counted and deleted afterwards.
    """
    import redis

    from core.lake import Lake
    from core.settings import Settings
    from features.store import materialize, open_store

    client = redis.Redis.from_url(redis_url)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        settings = Settings(home=Path(tmp) / "ws", feast_online=redis_url)
        settings.workspace.ensure()
        lake = Lake(home / "lake")
        project = f"benchcap{uuid.uuid4().hex[:8]}"
        store = open_store(settings, project=project)
        try:
            materialize(store, lake)
            suffix = project.encode()
            keys = [k for k in client.scan_iter(count=5000) if k.endswith(suffix)]
            sizes = [int(client.memory_usage(k, samples=0) or 0) for k in keys]
            out["feature_keys"] = len(keys)
            out["feature_bytes"] = sum(sizes)
            out["feature_bytes_per_key"] = sum(sizes) / max(len(keys), 1)
            out["profiles"] = len(lake.read("profiles", ["profile_id"]))
            out["titles"] = len(lake.read("titles", ["title_id"]))
        finally:
            store.teardown()

    from catalog_api.security.rate_limit import LimitStore, LoginGuard

    guard = LoginGuard(LimitStore(redis_url))
    marker = uuid.uuid4().hex[:12]
    for i in range(200):
        guard.failed(f"bench-{marker}-{i}@example.com", "203.0.113.7")
    keys = [k for k in client.scan_iter(match=f"*{marker}*", count=5000)]
    sizes = [int(client.memory_usage(k, samples=0) or 0) for k in keys]
    out["limit_keys_per_login"] = len(keys) / 200
    out["limit_bytes_per_login"] = sum(sizes) / 200
    if keys:
        client.delete(*keys)
    return out


def _finished(path: Path | None) -> dict[str, Any]:
    """The parts an earlier run printed as JSON lines on stderr: exporter, exposures, sizes by events."""
    done: dict[str, Any] = {"sizes": {}}
    if path is None:
        return done
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "steps" in record:
            done["sizes"][int(record["events"])] = record
        else:
            done.update(record)
    return done


def serving_results() -> list[dict[str, Any]]:
    """Per-replica throughput from the last serving and API bench results (not rerun)."""
    rows: list[dict[str, Any]] = []
    for name in ("serving", "api"):
        path = RESULTS / f"{name}.json"
        if path.exists():
            payload = json.loads(path.read_text())
            rows.append({"bench": name, "command": payload.get("command"), "machine": payload.get("machine")})
            rows[-1]["tables"] = [
                {"caption": t["caption"], "columns": t["columns"], "rows": t["rows"]} for t in payload["tables"]
            ]
    return rows


def fit_power_law(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(c, b) of ``y = c · (x / 1M) ** b`` by least squares in log space; None for fewer than 2 sizes."""
    usable = [(x / 1e6, y) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in usable}) < 2:
        return None
    lx = [math.log(x) for x, _ in usable]
    ly = [math.log(y) for _, y in usable]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    b = sum((a - mx) * (c - my) for a, c in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)
    return math.exp(my - b * mx), b


def main() -> None:
    """Measure, print markdown tables, and save bench/results/capacity[-ENGINE].json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=ENGINES, default="pandas", help="MARQUEE_ENGINE of the CLI steps")
    parser.add_argument("--events", default="1000000,3000000", help="comma-separated sizes (synthetic events)")
    parser.add_argument("--models", default="popularity,als,lightfm,item_knn,seqknn", help="marquee train --models")
    parser.add_argument("--exporter-events", type=int, default=200_000, help="events the exporter bench copies")
    parser.add_argument("--database-url", default=None, help="export from PostgreSQL instead of SQLite")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="'' skips the Redis measurements")
    parser.add_argument("--redis-events", type=int, default=1_000_000, help="the size whose feature rows go to Redis")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per CLI step before it is killed")
    parser.add_argument("--exposure-pages", type=int, default=5_000, help="home pages whose exposures are written")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: exporter,exposures,sizes,train,redis"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="stderr of an earlier run: reuse the parts and sizes it finished (each is one JSON line there)",
    )
    parser.add_argument("--no-json", action="store_true", help="print only; do not write bench/results")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    sizes = [int(float(s)) for s in args.events.split(",") if s.strip()]

    done = _finished(args.resume)
    exporter = done.get("exporter")
    if exporter is None and "exporter" not in skip:
        exporter = bench_exporter(args.exporter_events, args.database_url)
        print(json.dumps({"exporter": exporter}), file=sys.stderr, flush=True)
    exposures = done.get("exposures")
    if exposures is None and "exposures" not in skip:
        exposures = bench_exposures(args.exposure_pages)
        print(json.dumps({"exposures": exposures}), file=sys.stderr, flush=True)
    redis_url = None if "redis" in skip or not args.redis_url else args.redis_url
    measured = [size for n, size in sorted(done.get("sizes", {}).items()) if n in sizes]
    if "sizes" not in skip:
        for n in sizes:
            if n in done.get("sizes", {}):
                continue
            # A size that fails (or times out) is reported and skipped: the sizes before it still count.
            try:
                size = measure_size(
                    n,
                    args.engine,
                    args.models,
                    args.timeout,
                    redis_url if n == args.redis_events else None,
                    train_step="train" not in skip,
                )
            except RuntimeError as error:
                print(f"[{n:,} events] FAILED: {error}", file=sys.stderr, flush=True)
                continue
            print(json.dumps(size), file=sys.stderr, flush=True)
            measured.append(size)
    measured.sort(key=lambda size: size["events"])
    redis_part = next((s["redis"] for s in measured if s["redis"]), None)
    load = os.getloadavg()[0]

    tables: list[dict[str, Any]] = []
    print(f"\n## Capacity inputs, engine {args.engine}, {os.cpu_count()} CPUs, load average {load:.1f} at the end\n")
    if exporter:
        cols = ["database", "events", "wall s", "CPU s", "events/s", "events per CPU-s", "lake bytes/event"]
        row = [
            exporter["database"],
            exporter["events"],
            round(exporter["wall_s"], 1),
            round(exporter["cpu_s"], 1),
            round(exporter["events_per_s"]),
            round(exporter["events_per_cpu_s"]),
            round(exporter["lake_bytes_per_event"], 1),
        ]
        tables.append({"caption": "exporter: API database → lake (one process)", "columns": cols, "rows": [row]})
    if exposures:
        cols = ["pages", "exposure rows", "rows/page", "lake bytes/row", "rows per CPU-s"]
        row = [
            exposures["pages"],
            exposures["rows"],
            round(exposures["rows_per_page"], 1),
            round(exposures["lake_bytes_per_row"], 2),
            round(exposures["rows_per_cpu_s"]),
        ]
        caption = "exposures: home pages → lake (6 rows × 20 of 50k titles, half the pages in one experiment)"
        tables.append({"caption": caption, "columns": cols, "rows": [row]})
    if measured:
        cols = ["events", "profiles", "step", "wall s", "CPU s", "peak RSS MB", "detail"]
        rows = []
        for size in measured:
            for step in size["steps"]:
                detail = ", ".join(f"{k} {v:.1f}" for k, v in step["detail"].items())
                rows.append(
                    [
                        size["events"],
                        size["profiles"],
                        step["name"],
                        round(step["wall_s"], 1),
                        round(step["cpu_s"], 1),
                        round(step["peak_rss_mb"]),
                        detail,
                    ]
                )
        tables.append({"caption": f"CLI steps vs events, engine {args.engine}", "columns": cols, "rows": rows})
        lake_rows = [[s["events"], round(s["lake_bytes_per_event"], 1)] for s in measured]
        tables.append(
            {"caption": "lake watch_events bytes per event", "columns": ["events", "bytes/event"], "rows": lake_rows}
        )
        fits = []
        for name in ("generate", "features materialize", "train"):
            for unit in ("wall_s", "cpu_s"):
                points = [(s["events"], st[unit]) for s in measured for st in s["steps"] if st["name"] == name]
                fit = fit_power_law(points)
                if fit:
                    c, b = fit
                    fits.append([name, unit.replace("_", " "), round(c, 1), round(b, 2), round(c * 10**b, 1)])
        feature_points = [
            (s["events"], st["detail"]["feature_tables_s"])
            for s in measured
            for st in s["steps"]
            if "feature_tables_s" in st["detail"]
        ]
        fit = fit_power_law(feature_points)
        if fit:
            fits.append(
                [
                    "feature tables (build only)",
                    "wall s",
                    round(fit[0], 1),
                    round(fit[1], 2),
                    round(fit[0] * 10 ** fit[1], 1),
                ]
            )
        if fits:
            tables.append(
                {
                    "caption": "fitted seconds = c · (events / 1M) ** b",
                    "columns": ["step", "unit", "c", "b", "at 10M"],
                    "rows": fits,
                }
            )
    if redis_part:
        cols = ["what", "keys", "bytes", "bytes/key"]
        rows = [
            [
                f"online features ({redis_part['profiles']:,} profiles, {redis_part['titles']:,} titles)",
                redis_part["feature_keys"],
                redis_part["feature_bytes"],
                round(redis_part["feature_bytes_per_key"]),
            ],
            [
                "login limit (one failed login)",
                redis_part["limit_keys_per_login"],
                round(redis_part["limit_bytes_per_login"]),
                round(redis_part["limit_bytes_per_login"] / max(redis_part["limit_keys_per_login"], 1)),
            ],
        ]
        tables.append({"caption": "Redis memory (MEMORY USAGE)", "columns": cols, "rows": rows})

    for table in tables:
        print(f"### {table['caption']}\n")
        print("| " + " | ".join(table["columns"]) + " |")
        print("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |")
        print()
    for bench in serving_results():
        print(f"### last results of bench_{bench['bench']}.py (not rerun): `{bench['command']}`\n")
        for table in bench["tables"]:
            print(f"{table['caption']}: {table['columns']}")
            for row in table["rows"]:
                print(f"    {row}")
        print()
    if not args.no_json and tables:
        name = "capacity" if args.engine == "pandas" else f"capacity-{args.engine}"
        notes = (
            "Synthetic service (5k titles and 20k profiles per 1M events); CPU s is user + system time of the "
            "step's process tree. docs/capacity.md turns these into the capacity model."
        )
        write_results(name, f"Capacity inputs (engine {args.engine})", tables, notes)


if __name__ == "__main__":
    main()
