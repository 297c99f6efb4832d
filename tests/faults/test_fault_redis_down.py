"""Redis (the shared login-limit store) killed under load: no 5xx, limits degrade to per-process.

A redis-server of this test's own runs on a free port and is SIGKILLed mid-load.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.api.support import free_port

from .load import ApiProcess, run_load, sign_in

pytestmark = pytest.mark.slow


def test_redis_down_degrades_limits_without_5xx(workspace_env: dict[str, str]) -> None:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    api = ApiProcess({**workspace_env, "MARQUEE_RATE_LIMIT_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        time.sleep(0.5)
        api.start()
        headers, profile = sign_in(api.url)
        email = f"{uuid.uuid4().hex}@example.com"
        assert (
            httpx.post(f"{api.url}/v1/auth/signup", json={"email": email, "password": "long enough pw"}).status_code
            == 201
        )
        window: dict[str, float] = {}
        logins: list[int] = []

        def fault() -> None:
            time.sleep(2.0)
            window["start"] = time.monotonic()
            redis.kill()
            redis.wait()
            window["end"] = time.monotonic()
            for _ in range(7):  # wrong passwords while Redis is gone: still limited (per process)
                logins.append(
                    httpx.post(f"{api.url}/v1/auth/token", data={"username": email, "password": "wrong"}).status_code
                )

        killer = threading.Thread(target=fault)
        killer.start()
        result = run_load(lambda: api.url, headers, profile, 6.0, 30.0)
        killer.join()
        print(
            f"\nRedis down: {len(result.answers)} answers {dict(Counter(a.status for a in result.answers))}, "
            f"logins after the kill {logins}"
        )
        assert result.server_errors == [] and all(code < 500 for code in logins)
        assert logins[:5] == [401] * 5 and 429 in logins[5:]
        assert result.recovered_after(window["end"]) is not None
    finally:
        api.stop()
        if redis.poll() is None:
            redis.kill()
