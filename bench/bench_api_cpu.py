"""API CPU per cold home page, in-process: the app alone, without an HTTP server or a load generator.

``bench_api.py`` measures the API's CPU under open-loop HTTP load, where uvicorn,
the socket writes and whatever else runs on the machine move the figure by a
millisecond from one run to the next. This bench sends cold home pages (no
candidate or page cache) straight through the ASGI app, a few at a time, with
the same stand-in model server over HTTP, and divides the process's CPU time by
the pages. The exposure log's flush to the lake, which runs off the request
path but in the API process, is timed apart.

Usage: ``python bench/bench_api_cpu.py [--pages 300] [--rounds 7] [--events 30000] [--accounts 20]``.
``--code PATH`` imports the API from another checkout (to compare two trees run
at the same time on the same machine). Prints a table; exits non-zero only when
something could not run.
"""

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class AsgiCaller:
    """Calls an ASGI app with GET requests and returns (status, body): the least a client can cost."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, path: str, query: bytes = b"", headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if body:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"api.test"), *raw_headers],
            "client": ("192.0.2.10", 50000),
            "server": ("api.test", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # a disconnect is never sent: the app answers first
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def setup_profiles(caller: AsgiCaller, accounts: int, catalog_ids: list[str]) -> list[tuple[str, str]]:
    """Accounts with two profiles each (one kids), each with six watch events: (authorization, profile_id)."""
    import json
    import random
    from urllib.parse import urlencode

    rng = random.Random(42)
    users = []
    json_headers = {"content-type": "application/json"}
    for a in range(accounts):
        email = f"cpu{a}@example.com"
        signup = json.dumps({"email": email, "password": "bench password", "plan": "premium"}).encode()
        await caller.request("POST", "/v1/auth/signup", headers=json_headers, body=signup)
        form = urlencode({"username": email, "password": "bench password"}).encode()
        status, token = await caller.request(
            "POST", "/v1/auth/token", headers={"content-type": "application/x-www-form-urlencoded"}, body=form
        )
        if status != 200:
            raise SystemExit(f"login failed: {status} {token[:200]!r}")
        auth = {"authorization": f"Bearer {json.loads(token)['access_token']}"}
        for p, kids in enumerate((False, True)):
            body = json.dumps({"name": f"p{p}", "is_kids": kids}).encode()
            _, created = await caller.request("POST", "/v1/profiles", headers={**auth, **json_headers}, body=body)
            profile_id = json.loads(created)["profile_id"]
            for e, title_id in enumerate(rng.sample(catalog_ids, 6)):
                event = {"event_id": f"{profile_id}-{e}", "title_id": title_id, "position_s": 500, "duration_s": 1000}
                await caller.request(
                    "POST",
                    f"/v1/profiles/{profile_id}/events",
                    headers={**auth, **json_headers},
                    body=json.dumps(event).encode(),
                )
            users.append((auth["authorization"], profile_id))
    return users


async def pages(caller: AsgiCaller, users: list[tuple[str, str]], count: int, concurrency: int) -> dict[str, int]:
    """``count`` home pages over the profiles, ``concurrency`` at a time; the statuses and sources seen."""
    seen: dict[str, int] = {}
    next_page = 0

    async def worker() -> None:
        nonlocal next_page
        while next_page < count:
            i, next_page = next_page, next_page + 1
            authorization, profile_id = users[i % len(users)]
            status, body = await caller.request(
                "GET", f"/v1/profiles/{profile_id}/home", b"device=tv", {"authorization": authorization}
            )
            key = str(status)
            if status == 200:
                key = "personalized" if b'"source":"personalized"' in body else "fallback"
            seen[key] = seen.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


async def measure(home: Path, serving_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Rounds of cold pages through the app; process CPU per page, and the exposure flush apart."""
    from catalog_api.app import create_app
    from catalog_api.options import ApiOptions
    from core.lake import Lake
    from core.settings import Settings

    settings = Settings(home=home, serving_url=serving_url)
    app = create_app(settings, ApiOptions(candidate_ttl_s=0, client_limit=10**6, account_limit=10**6))
    state = app.state.marquee
    caller = AsgiCaller(app)
    catalog_ids = list(Lake(home / "lake").read("titles", ["title_id"])["title_id"])
    async with app.router.lifespan_context(app):
        users = await setup_profiles(caller, args.accounts, catalog_ids)
        await pages(caller, users, 3 * len(users), args.concurrency)  # warm-up: every profile, three times
        state.exposures.flush()
        gc.collect()
        gc.freeze()  # as a served worker does after start-up (``freeze_startup_objects``)
        per_page: list[float] = []
        flush_per_page: list[float] = []
        sources: dict[str, int] = {}
        for _ in range(args.rounds):
            cpu = time.process_time()
            seen = await pages(caller, users, args.pages, args.concurrency)
            per_page.append((time.process_time() - cpu) * 1000 / args.pages)
            cpu = time.process_time()
            state.exposures.flush()
            flush_per_page.append((time.process_time() - cpu) * 1000 / args.pages)
            for key, n in seen.items():
                sources[key] = sources.get(key, 0) + n
    return {"per_page": per_page, "flush": flush_per_page, "sources": sources}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="cold home pages per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=4, help="pages in flight at once")
    parser.add_argument("--accounts", type=int, default=20, help="accounts (two profiles each)")
    parser.add_argument("--events", type=int, default=30_000, help="synthetic watch events in the lake")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose API is measured")
    parser.add_argument("--netflix", type=Path, default=REPO.parent / "shared" / "data" / "netflix-titles" /
                        "netflix_titles.csv")  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from bench.bench_api import fill_workspace, free_port, stop, wait_ready

    sys.path.insert(0, str(args.code.resolve()))  # the measured API's modules come first
    for name in [n for n in sys.modules if n.split(".")[0] in ("core", "catalog_api", "features")]:
        del sys.modules[name]
    if not args.netflix.exists():
        raise SystemExit(f"the Netflix catalog is missing at {args.netflix}; pass --netflix PATH")
    with tempfile.TemporaryDirectory(prefix="marquee-bench-api-cpu-") as tmp:
        home = Path(tmp) / "ws"
        print(f"loading {args.netflix.name} and {args.events:,} synthetic events...", file=sys.stderr, flush=True)
        fill_workspace(home, args.netflix, args.events, seed=42)
        port = free_port()
        serving_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "MARQUEE_HOME": str(home), "MARQUEE_LOG_LEVEL": "WARNING"}
        stand_in = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "bench_api.py"), "--model-server-only", str(home), "--port",
             str(port)], env=env,
        )  # fmt: skip
        try:
            wait_ready(serving_url, stand_in, "model server stand-in", "/docs")
            os.environ["MARQUEE_LOG_LEVEL"] = "WARNING"
            result = asyncio.run(measure(home, serving_url, args))
        finally:
            stop(stand_in)
    per_page, flush = result["per_page"], result["flush"]
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(result["sources"].items()))
    print(f"\n## API CPU per cold home page, in-process ({args.rounds} rounds of {args.pages} pages, "
          f"{args.concurrency} in flight; code: {args.code.resolve().name})\n")  # fmt: skip
    print("| CPU ms / page: median | min | max | exposure flush CPU ms / page: median | pages |")
    print("|---|---|---|---|---|")
    print(f"| {statistics.median(per_page):.2f} | {min(per_page):.2f} | {max(per_page):.2f} | "
          f"{statistics.median(flush):.2f} | {sources} |")  # fmt: skip
    print(f"\nrounds: {', '.join(f'{v:.2f}' for v in per_page)}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
