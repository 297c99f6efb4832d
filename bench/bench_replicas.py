"""Throughput of 1 vs 2 replicas behind HAProxy: the model server and the API's home pages.

Each tier is started the way ``marquee serve models|api --replicas N`` starts it
(``marquee.commands.replicas.ReplicaSet``: N processes on loopback ports, a
generated HAProxy in front), N = 1 and 2, and driven with ``wrk`` (closed loop,
``--connections`` connections, ``--duration`` seconds) through the balancer:

* model server: ``POST /recommend`` (k = 60, what a home page asks), each
  replica with ``--workers 1`` and its per-context memo off, so every request
  is a cold page; with N = 1 also straight at the replica, to show what the
  balancer itself costs;
* API: ``GET /v1/profiles/{id}/home`` of ``--accounts`` accounts (one profile
  each, signed up with distinct ``X-Forwarded-For`` addresses through the
  balancer, as clients behind it would be), candidate cache on as in
  production, one model-server replica behind it; login limits in Redis
  (``--redis``), the database the workspace's SQLite file.

Per-replica throughput is req/s divided by N. Each replica runs one worker, so
on 2 cores two replicas can at best use the second core that one replica with
``--workers 2`` would use as well; nothing past that. The number worth reading
is the per-replica figure of the one-replica run, with the balancer in the
path; capacity scales with cores (hosts), not with processes per core. On a
machine shared with other work the scheduler's share dominates: the load
average is printed with the table.

Workspace: ``--home DIR`` reuses one that ``marquee demo --no-serve`` built
(its champion); without it the test suite's small serving world (11 titles,
item-kNN) is built in a temporary folder, so the numbers are the servers' and
the balancer's overhead more than the models'.

Run: ``nice -n 10 .venv/bin/python bench/bench_replicas.py [--home .marquee] [--duration 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from core.settings import Settings  # noqa: E402
from marquee.balancer import API_TIER, MODEL_TIER  # noqa: E402
from marquee.commands.demo_processes import marquee_command  # noqa: E402
from marquee.commands.replicas import REPLICA_HOST, ReplicaSet, free_port  # noqa: E402

RECOMMEND_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
"""

HOME_SCRIPT = """
local paths = {%s}
local tokens = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer " .. tokens[i]})
end
"""


def _lua(text: str) -> str:
    return f"[==[{text}]==]"


def build_workspace(home: Path | None, tmp: Path) -> Settings:
    """``home`` as is, or the test suite's serving world (lake + a registered item-kNN champion)."""
    if home is not None:
        return Settings(home=home)
    import test_serving_world as world

    settings = Settings(home=tmp / "home")
    settings.workspace.ensure()
    world.write_lake(settings)
    world.register(settings, world.build_bundle(), tmp)
    return settings


def recommend_body(settings: Settings, home_given: bool) -> str:
    """One viewer's ``/recommend`` body (a lake profile with history)."""
    from serving.contract import RecommendRequest

    if home_given:
        from core.lake import Lake
        from serving.contract import ViewerContext

        events = Lake(settings.workspace.lake_dir).read("watch_events", columns=["profile_id", "title_id"])
        profile = str(events["profile_id"].iloc[0])
        titles = events[events["profile_id"] == profile]["title_id"].drop_duplicates().tail(50)
        history = [{"title_id": str(t), "progress": 1.0, "completed": True} for t in titles]
        viewer = ViewerContext.model_validate({"profile_id": profile, "history": history})
    else:
        import test_serving_world as world

        viewer = world.context("adult1")
    return RecommendRequest(viewer=viewer, k=60).model_dump_json()


def drive(url: str, script: str, tmp: Path, connections: int, duration: int) -> dict[str, float]:
    """wrk against ``url`` with the Lua ``script``: req/s, p50/p99 ms, non-2xx + socket errors."""
    path = tmp / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    path.write_text(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(path), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, flags=re.M):
        latency[pct] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
        "errors": float(errors),
    }


def model_tier(n: int, env: dict[str, str], settings: Settings) -> ReplicaSet:
    def command(port: int) -> list[str]:
        return marquee_command("serve", "models", "--port", str(port), "--host", REPLICA_HOST, "--workers", "1")

    return ReplicaSet(MODEL_TIER, n, REPLICA_HOST, free_port(), command, env, settings.workspace.run_dir)


def api_tier(n: int, env: dict[str, str], settings: Settings) -> ReplicaSet:
    def command(port: int) -> list[str]:
        return marquee_command(
            "serve", "api", "--port", str(port), "--host", REPLICA_HOST, "--keep-alive", "65",
            "--export-every", "0", "--no-push-features",
        )  # fmt: skip

    api_env = {**env, "MARQUEE_TRUSTED_PROXIES": REPLICA_HOST}
    return ReplicaSet(API_TIER, n, REPLICA_HOST, free_port(), command, api_env, settings.workspace.run_dir)


def home_script(base: str, accounts: int) -> str:
    """Sign up ``accounts`` accounts with one profile each (distinct client addresses); wrk's home-page script."""
    paths, tokens = [], []
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(accounts):
            address = {"X-Forwarded-For": f"198.51.100.{i % 250 + 1}"}
            email, password = f"bench-{uuid.uuid4().hex[:10]}@example.com", "bench password 1"
            http.post("/v1/auth/signup", json={"email": email, "password": password}, headers=address)
            token = http.post("/v1/auth/token", data={"username": email, "password": password}, headers=address).json()[
                "access_token"
            ]
            bearer = {"Authorization": f"Bearer {token}"}
            profile = http.post("/v1/profiles", json={"name": "Bench"}, headers=bearer).json()["profile_id"]
            paths.append(f"/v1/profiles/{profile}/home")
            tokens.append(token)
    return HOME_SCRIPT % (", ".join(_lua(p) for p in paths), ", ".join(_lua(t) for t in tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", type=Path, help="a workspace `marquee demo --no-serve` built (default: build one)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=40, help="accounts whose home pages are asked")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="where the API replicas share limits")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp_name:
        tmp = Path(tmp_name)
        settings = build_workspace(args.home, tmp)
        settings.workspace.ensure()
        base_env = {
            "MARQUEE_HOME": str(settings.workspace.home),
            "MARQUEE_SERVING_MEMO_S": "0",
            "MARQUEE_RATE_LIMIT_URL": args.redis,
            "MARQUEE_LOG_LEVEL": "WARNING",
            "BENTOML_DO_NOT_TRACK": "True",
            "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        recommend = RECOMMEND_SCRIPT % _lua(recommend_body(settings, args.home is not None))
        for n in (1, 2):
            tier = model_tier(n, base_env, settings)
            try:
                tier.start()
                result = drive(f"{tier.url}/recommend", recommend, tmp, args.connections, args.duration)
                rows.append({"tier": "model server /recommend", "path": "HAProxy", "replicas": n, **result})
                if n == 1:
                    direct = f"http://{REPLICA_HOST}:{tier.members[0].port}/recommend"
                    result = drive(direct, recommend, tmp, args.connections, args.duration)
                    rows.append({"tier": "model server /recommend", "path": "direct", "replicas": 1, **result})
            finally:
                tier.stop()
        models = model_tier(1, base_env, settings)
        try:
            models.start()
            api_env = {**base_env, "MARQUEE_SERVING_URL": models.url}
            for n in (1, 2):
                tier = api_tier(n, api_env, settings)
                try:
                    tier.start()
                    script = home_script(tier.url, args.accounts)
                    result = drive(tier.url, script, tmp, args.connections, args.duration)
                    rows.append({"tier": "API home pages", "path": "HAProxy", "replicas": n, **result})
                finally:
                    tier.stop()
        finally:
            models.stop()

    header = f"{'tier':<26}{'path':<9}{'replicas':>9}{'req/s':>9}{'per replica':>13}"
    print(f"\n{header}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for row in rows:
        n = int(row["replicas"])  # type: ignore[call-overload]
        rps = float(row["rps"])  # type: ignore[arg-type]
        print(
            f"{row['tier']:<26}{row['path']:<9}{n:>9}{rps:>9.0f}{rps / n:>13.0f}"
            f"{float(row['p50_ms']):>9.1f}{float(row['p99_ms']):>9.1f}{int(row['errors']):>8}"  # type: ignore[arg-type]
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{os.cpu_count()} CPUs, load average {load}; wrk -t1 -c{args.connections} -d{args.duration}s, same machine"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
