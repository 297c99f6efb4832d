"""Benchmark: event → page lag, with both servers up and background home traffic.

Same workspace and servers as ``bench/bench_api.py`` (the Netflix catalog, a
seeded synthetic history, the default models that ``marquee train`` registers,
``marquee serve models`` and ``marquee serve api``). While an open-loop
generator sends ``--rate`` home requests per second for other profiles, a
probe picks one profile at a time, posts a completed watch of a title it has
not seen, and from the event's 2xx asks its home page until the page reflects
it: "Because You Watched" is seeded by that title, Top Picks differ from the
page before the event, and the title is nowhere on the page. The title is one
the page before showed in a popularity row (so the profile may see it). The lag is the time from
the event's 2xx to the answer of the first page that reflects it; the goal is
that the first page does (p99 lag ≤ 1 s).

Usage: ``python bench/bench_realtime.py [--rate 200] [--probes 50] [--events 100000]``.
Prints a table; exits non-zero only when something could not run.
"""

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import bench_api  # noqa: E402  (a sibling script, not a package)


def _rows(page: dict[str, Any]) -> dict[str, list[str]]:
    return {row["key"]: [item["title_id"] for item in row["items"]] for row in page["rows"]}


Users = list[tuple[dict[str, str], str]]


async def probe(api: str, users: Users, titles: list[str], n: int, seed: int) -> dict[str, Any]:
    """Post a completed watch, then ask the page until it reflects it; lag per probe."""
    rng = random.Random(seed)
    lags: list[float] = []
    first_page, never, errors = 0, 0, 0
    why_not: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        for i in range(n):
            try:
                lag, first, missing = await probe_once(http, users, titles, rng, i)
            except httpx.HTTPError:
                errors += 1
                continue
            if lag is None:
                never += 1
                why_not[missing] = why_not.get(missing, 0) + 1
            else:
                lags.append(lag)
                first_page += first
    ordered = sorted(lags)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")  # noqa: E731
    return {"probes": n, "reflected_first": first_page, "never": never, "errors": errors, "why_not": why_not,
            "p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}  # fmt: skip


async def probe_once(
    http: httpx.AsyncClient, users: Users, titles: list[str], rng: random.Random, i: int
) -> tuple[float | None, bool, str]:
    """One probe: lag in s (None: never reflected within 50 pages), reflected on the first page, what was missing."""
    headers, profile_id = users[rng.randrange(0, len(users), 2)]  # adult profiles
    before = (await http.get(f"/v1/profiles/{profile_id}/home", headers=headers)).json()
    # A title the page just showed in a popularity row: visible to this profile (maturity, licence)
    # and known to the catalog; the viewer watches it to the end.
    rows_before = _rows(before)
    candidates = [t for key, ids in rows_before.items() if key.startswith(("trending", "genre:", "new_")) for t in ids]
    title = rng.choice(candidates) if candidates else rng.choice(titles)
    body = {"event_id": f"probe-{i}-{profile_id}", "title_id": title, "position_s": 1000, "duration_s": 1000}
    response = await http.post(f"/v1/profiles/{profile_id}/events", json=body, headers=headers)
    response.raise_for_status()
    accepted = time.perf_counter()
    missing = ""
    for attempt in range(50):
        page = (await http.get(f"/v1/profiles/{profile_id}/home", headers=headers)).json()
        rows = _rows(page)
        seeded = f"because_you_watched:{title}" in rows
        picks_moved = rows.get("top_picks") != _rows(before).get("top_picks")
        gone = title not in {t for ids in rows.values() for t in ids}
        if seeded and picks_moved and gone and page["source"] == "personalized":
            return time.perf_counter() - accepted, attempt == 0, ""
        missing = (
            ", ".join(
                what
                for what, ok in (("because row", seeded), ("top picks moved", picks_moved), ("title gone", gone))
                if not ok
            )
            or f"source {page['source']}"
        )
        missing += f" (top picks: {page.get('fallback_reason') or 'model'})"
        await asyncio.sleep(0.05)
    return None, False, missing


async def run(api: str, users: Users, titles: list[str], args: argparse.Namespace) -> Any:
    def home_request(i: int) -> tuple[str, dict[str, str], dict[str, str]]:
        headers, profile_id = users[i % len(users)]
        return f"/v1/profiles/{profile_id}/home", {"device": "tv"}, headers

    # Warm-up, gently (a running service is warm): a few pages per profile.
    await bench_api.open_loop(api, 20, max(3.0, 3 * len(users) / 20), home_request)
    # The background load runs in a thread with its own event loop, so the probe's timings are its own.
    result: dict[str, Any] = {}
    loader = threading.Thread(
        target=lambda: result.update(asyncio.run(bench_api.open_loop(api, args.rate, args.seconds, home_request)))
    )
    loader.start()
    await asyncio.sleep(2)
    probes = await probe(api, users, titles, args.probes, args.seed)
    await asyncio.to_thread(loader.join)
    return probes, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="background home requests per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the background load")
    parser.add_argument("--probes", type=int, default=50, help="watch events probed (one at a time)")
    parser.add_argument("--accounts", type=int, default=40, help="accounts (two profiles each)")
    parser.add_argument("--events", type=int, default=100_000, help="synthetic watch events in the lake")
    parser.add_argument("--model-workers", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--netflix", type=Path, default=bench_api.NETFLIX)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="marquee-bench-rt-") as tmp:
        home = Path(tmp) / "ws"
        print(f"loading {args.netflix.name} and {args.events:,} synthetic events...", file=sys.stderr, flush=True)
        bench_api.fill_workspace(home, args.netflix, args.events, args.seed)
        env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_LOG_LEVEL": "WARNING"}
        processes: list[subprocess.Popen[bytes]] = []
        try:
            print("features and training (the default models)...", file=sys.stderr, flush=True)
            for step in (["features", "apply"], ["features", "materialize"], ["train"]):
                subprocess.run([sys.executable, "-m", "marquee", *step], env=env, cwd=REPO, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
            port = bench_api.free_port()
            serving_url = f"http://127.0.0.1:{port}"
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "marquee", "serve", "models", "--port", str(port),
                 "--workers", str(args.model_workers)],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL, start_new_session=True,
            ))  # fmt: skip
            bench_api.wait_ready(serving_url, processes[-1], "marquee serve models")
            api_port = bench_api.free_port()
            api = f"http://127.0.0.1:{api_port}"
            env["MARQUEE_SERVING_URL"] = serving_url
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "marquee", "serve", "api", "--port", str(api_port), "--export-every", "60",
                 "--workers", str(args.api_workers)],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL,
            ))  # fmt: skip
            bench_api.wait_ready(api, processes[-1], "marquee serve api")
            from core.lake import Lake

            titles = Lake(home / "lake").read("titles", ["title_id"])["title_id"].tolist()
            users = bench_api.setup_users(api, args.accounts, args.seed, titles)
            probes, load = asyncio.run(run(api, users, titles, args))
        finally:
            for process in processes:
                bench_api.stop(process)
    print(f"\n## Event → page lag, {args.rate:.0f} req/s of background home traffic "
          f"({args.api_workers} API workers, {args.model_workers} model-server workers)\n")  # fmt: skip
    print("| probes | reflected on the first page | never (50 pages) | errors | lag p50 ms | lag p99 ms | lag max ms "
          "| background achieved req/s | background p99 ms | background sources |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(load["sources"].items())) or "—"
    print(f"| {probes['probes']} | {probes['reflected_first']} | {probes['never']} | {probes['errors']} | "
          f"{probes['p50']:.1f} | {probes['p99']:.1f} | {probes['max']:.1f} | {load['achieved_rate']:.1f} | "
          f"{load['p99']:.1f} | {sources} |")  # fmt: skip
    for what, count in sorted(probes["why_not"].items()):
        print(f"- never reflected, {count}: missing {what}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
