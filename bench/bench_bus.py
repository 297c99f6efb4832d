"""Benchmark: events through the event bus, end to end (API 2xx → lake) and the lake writer alone.

Needs a NATS server with JetStream (``--nats``, default ``nats://127.0.0.1:4222``).
Everything runs on a temporary workspace with a small test catalog and a stream
of its own (deleted at the end):

1. **API, database only** (the embedded default): one API process; ``--events``
   watch events posted by ``--concurrency`` clients; accepted events/s.
2. **API with the bus**: the same load with ``MARQUEE_EVENT_BUS`` set (each 2xx
   waits for the stream's ack) and ``marquee consume lake-writer`` as its own
   process; accepted events/s, POST latency, and end-to-end events/s: from the
   first request until the last acknowledged event is in the lake.
3. **Lake writer alone**: ``--backlog`` messages published to a fresh stream, then
   the lake writer drains it (in this process) per batch size; messages/s.

Usage: ``python bench/bench_bus.py [--events 3000] [--concurrency 16] [--backlog 20000]``.
Prints a table; exits non-zero only when something could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from catalog_api.bus_lake_writer import LAKE_WRITER, LakeWriter  # noqa: E402
from core.bus import EventKind, Topology, encode, ensure_stream, run_consumer  # noqa: E402
from core.lake import Lake  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.api.support import fill_lake, free_port  # noqa: E402  (the small test catalog)

LAUNCH = """
import sys, uvicorn
from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings
options = ApiOptions(row_size=6, account_limit=10**7, client_limit=10**7, login_limit=10**6, export_interval_s=0)
uvicorn.run(create_app(Settings(), options), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def start_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], cwd=REPO, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the API did not start")


def sign_in(base: str) -> tuple[dict[str, str], str]:
    email = f"{uuid.uuid4().hex}@example.com"
    httpx.post(f"{base}/v1/auth/signup", json={"email": email, "password": "correct horse 1"}).raise_for_status()
    token = httpx.post(f"{base}/v1/auth/token", data={"username": email, "password": "correct horse 1"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    profile = httpx.post(f"{base}/v1/profiles", json={"name": "Bench"}, headers=headers).json()["profile_id"]
    return headers, str(profile)


async def post_events(base: str, n: int, concurrency: int) -> dict[str, Any]:
    """``n`` watch events from ``concurrency`` clients (one profile each); latency and accepted/s."""
    users = [sign_in(base) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    ids: list[str] = []

    async def client(index: int, count: int) -> None:
        headers, profile = users[index]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for i in range(count):
                event_id = f"b{index}-{i}-{uuid.uuid4().hex[:8]}"
                body = {"event_id": event_id, "title_id": "m_space", "position_s": 10 + i % 80, "duration_s": 100}
                started = time.perf_counter()
                try:
                    response = await http.post(f"/v1/profiles/{profile}/events", json=body, headers=headers)
                except httpx.HTTPError:  # no answer: not acknowledged (counted as status 0)
                    statuses[0] = statuses.get(0, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code in (200, 201):
                    ids.append(event_id)

    started = time.perf_counter()
    await asyncio.gather(*(client(i, n // concurrency) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "started": started,
        "elapsed": elapsed,
        "ids": ids,
        "statuses": statuses,
        "accepted_per_s": len(ids) / elapsed,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
    }


def lake_ids(lake: Lake) -> set[str]:
    return set(lake.read("watch_events", ["event_id"])["event_id"]) if lake.exists("watch_events") else set()


def api_run(home: Path, nats: str | None, prefix: str, events: int, concurrency: int) -> dict[str, Any]:
    """One API process (and, with ``nats``, one lake-writer process) under the event load."""
    settings = Settings(home=home)
    settings.workspace.ensure()
    fill_lake(settings)
    env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_SERVING_URL": "http://127.0.0.1:9",
           "PYTHONPATH": str(REPO), "MARQUEE_LOG_LEVEL": "WARNING"}  # fmt: skip
    if nats:
        env |= {"MARQUEE_EVENT_BUS": nats, "MARQUEE_EVENT_BUS_PREFIX": prefix}
    port = free_port()
    api = start_api(env, port)
    consumer = None
    if nats:
        args = [sys.executable, "-m", "marquee", "consume", "lake-writer"]
        consumer = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        result = asyncio.run(post_events(f"http://127.0.0.1:{port}", events, concurrency))
        if nats:
            lake, wanted = Lake(settings.workspace.lake_dir), set(result["ids"])
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not wanted <= lake_ids(lake):
                time.sleep(0.05)
            in_lake = lake_ids(lake)
            result["end_to_end_s"] = time.perf_counter() - result["started"]
            result["lost"] = len(wanted - in_lake)
            result["lake_rows"] = len(lake.read("watch_events", ["event_id"]))
        return result
    finally:
        for process in (consumer, api):
            if process is not None:
                process.terminate()
                process.wait(30)


def backlog_messages(n: int, topology: Topology) -> list[tuple[str, str, bytes]]:
    ts = datetime.now(UTC) - timedelta(hours=1)
    subject = topology.subject(EventKind.WATCH)
    return [
        (subject, f"e{i}", encode({"event_id": f"e{i}", "profile_id": f"p{i % 500}", "title_id": "m_space", "ts": ts,
                                   "position_s": i % 90, "duration_s": 100, "device": "web", "country": "US"}))
        for i in range(n)
    ]  # fmt: skip


async def publish_backlog(nats: str, topology: Topology, items: list[tuple[str, str, bytes]]) -> float:
    """Publish ``items`` (acks awaited in windows of 500); returns messages/s."""
    import nats as nats_client

    nc = await nats_client.connect(nats)
    js = nc.jetstream()
    await ensure_stream(js, topology)
    started = time.perf_counter()
    for start in range(0, len(items), 500):
        await asyncio.gather(
            *(js.publish(s, body, headers={"Nats-Msg-Id": i}) for s, i, body in items[start : start + 500])
        )
    rate = len(items) / (time.perf_counter() - started)
    await nc.close()
    return rate


async def delete_stream(nats: str, topology: Topology) -> None:
    import nats as nats_client

    nc = await nats_client.connect(nats)
    try:
        await nc.jetstream().delete_stream(topology.stream)
    finally:
        await nc.close()


def consumer_run(nats: str, home: Path, backlog: int, batch: int) -> dict[str, Any]:
    """The lake writer draining ``backlog`` messages with ``batch`` per fetch."""
    topology = Topology(prefix=f"bench-{uuid.uuid4().hex[:10]}", max_bytes=1024**3)
    lake = Lake(home / "lake")
    try:
        publish_rate = asyncio.run(publish_backlog(nats, topology, backlog_messages(backlog, topology)))
        spec = dataclasses.replace(LAKE_WRITER, batch=batch, fetch_timeout_s=0.5)
        started = time.perf_counter()
        stats = asyncio.run(run_consumer(nats, topology, spec, LakeWriter(lake), until_idle=True))
        elapsed = time.perf_counter() - started - spec.fetch_timeout_s  # the last, empty fetch
        return {"publish_per_s": publish_rate, "handled": stats.handled, "per_s": stats.handled / elapsed,
                "rows": len(lake.read("watch_events", ["event_id"]))}  # fmt: skip
    finally:
        asyncio.run(delete_stream(nats, topology))


def others(run: dict[str, Any]) -> str:
    """Answers other than 2xx, e.g. ``(503: 3)``; empty when there were none."""
    rest = {s: n for s, n in run["statuses"].items() if s not in (200, 201)}
    return f"({', '.join(f'{s}: {n}' for s, n in sorted(rest.items()))})" if rest else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--batches", default="100,1000")
    args = parser.parse_args()

    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        base = api_run(Path(tmp) / "db", None, "", args.events, args.concurrency)
        rows.append(["API, database only (embedded default)", f"{len(base['ids'])} {others(base)}".strip(),
                     f"{base['accepted_per_s']:.0f}",
                     f"{base['p50_ms']:.1f} / {base['p99_ms']:.1f}", "-", "-"])  # fmt: skip
        prefix = f"bench-{uuid.uuid4().hex[:10]}"
        try:
            bus = api_run(Path(tmp) / "bus", args.nats, prefix, args.events, args.concurrency)
        finally:
            asyncio.run(delete_stream(args.nats, Topology(prefix)))
        rows.append(["API + stream ack, lake writer process", f"{len(bus['ids'])} {others(bus)}".strip(),
                     f"{bus['accepted_per_s']:.0f}",
                     f"{bus['p50_ms']:.1f} / {bus['p99_ms']:.1f}",
                     f"{len(bus['ids']) / bus['end_to_end_s']:.0f}",
                     f"{bus['lost']} lost, {bus['lake_rows'] - len(bus['ids'])} extra"])  # fmt: skip
        consumer_rows = []
        for batch in [int(b) for b in args.batches.split(",")]:
            run = consumer_run(args.nats, Path(tmp) / f"consumer-{batch}", args.backlog, batch)
            consumer_rows.append([batch, run["handled"], f"{run['per_s']:.0f}", f"{run['publish_per_s']:.0f}",
                                  run["rows"]])  # fmt: skip

    header = [
        "run",
        "events 2xx (other answers)",
        "accepted/s",
        "POST p50 / p99 ms",
        "2xx → lake events/s",
        "lake check",
    ]
    print(f"\nEvents through the API ({args.events} events, {args.concurrency} clients)")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(c) for c in row))
    consumer_header = ["batch", "messages", "lake writer msg/s", "publish msg/s (backlog)", "lake rows"]
    print(f"\nLake writer alone (backlog of {args.backlog} watch events)")
    print(" | ".join(consumer_header))
    for row in consumer_rows:
        print(" | ".join(str(c) for c in row))
    sys.path.insert(0, str(REPO / "bench"))
    from results_json import write_results

    write_results(
        "bus",
        "Events through the event bus",
        [
            {
                "caption": f"API → stream → lake ({args.events} events, {args.concurrency} clients)",
                "columns": header,
                "rows": rows,
            },
            {
                "caption": f"Lake writer alone ({args.backlog} messages)",
                "columns": consumer_header,
                "rows": consumer_rows,
            },
        ],
    )


if __name__ == "__main__":
    main()
