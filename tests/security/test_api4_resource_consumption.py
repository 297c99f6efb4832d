"""OWASP API4:2023 Unrestricted Resource Consumption: bounded pages, sizes and request rates."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from catalog_api.errors import RateLimitedError
from catalog_api.options import ApiOptions
from catalog_api.security.rate_limit import LimitStore, RateLimiter, SweptMemoryStorage
from tests.api.support import make_profile, signup_and_login

from .conftest import client_for


def test_page_sizes_and_text_lengths_are_bounded(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    profile = make_profile(api, headers, "P")["profile_id"]
    assert api.get("/v1/titles", params={"limit": 10**9}, headers=headers).status_code == 422
    assert api.get(f"/v1/profiles/{profile}/history", params={"limit": 10**6}, headers=headers).status_code == 422
    assert api.get("/v1/search", params={"q": "x" * 5000, "profile_id": profile}, headers=headers).status_code == 422
    assert api.post("/v1/profiles", json={"name": "n" * 10_000}, headers=headers).status_code == 422
    long_token = api.post("/v1/auth/refresh", json={"refresh_token": "a" * 100_000})
    assert long_token.status_code == 422


def test_requests_per_account_and_signups_per_address_are_limited(make_app: Callable[..., Any]) -> None:
    client = client_for(make_app(ApiOptions(account_limit=5, client_limit=3)), "192.0.2.7")
    headers = signup_and_login(client, f"{uuid.uuid4().hex}@example.com")  # signup + login: 2 of 3
    codes = [client.get("/v1/profiles", headers=headers).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    signups = [
        client.post("/v1/auth/signup", json={"email": f"{uuid.uuid4().hex}@x.io", "password": "long enough pw"})
        for _ in range(2)
    ]
    assert [r.status_code for r in signups] == [201, 429] and "Retry-After" in signups[1].headers


def test_in_memory_limits_count_every_hit_from_many_threads_at_once() -> None:
    """Sync routes run in a thread pool: the limits' in-memory store must take concurrent hits.

    ``limits``' ``MemoryStorage`` restarts its 10 ms expiry timer without a lock; two threads
    arriving together after it ran out raised "threads can only be started once", a 500
    under a soak at 100 req/s. Here 8 threads hit together, round after round, each round
    after the timer has run out, with the GIL switching as often as Python allows.
    """
    store = LimitStore()
    rounds = 200
    item = RateLimitItemPerSecond(rounds // 5, 60)  # each key below is hit exactly rounds / 5 times
    failures: list[BaseException] = []
    refused: list[str] = []
    together = threading.Barrier(8)

    def hammer(worker: int) -> None:
        for i in range(rounds):
            if together.wait() == 0:
                time.sleep(0.015)  # one thread lets the expiry timer run out while the others wait
            together.wait()
            key = f"client-{worker}-{i % 5}"
            try:
                if not store.hit(item, key):
                    refused.append(key)
            except Exception as exc:  # what a route would turn into a 500
                failures.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(worker,)) for worker in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert not failures, f"{len(failures)} of {8 * rounds} hits failed, first: {failures[0]!r}"
    assert not refused, f"{len(refused)} hits refused under the limit"


def test_retry_after_counts_from_the_oldest_hit_in_the_window() -> None:
    store = LimitStore()
    item = RateLimitItemPerSecond(2, 60)
    assert store.hit(item, "k") and store.hit(item, "k") and not store.hit(item, "k")
    assert 59 <= store.retry_after(item, "k") <= 60
    store.clear(item, "k")
    assert store.test(item, "k")


def _threads_started_by(call: Callable[[], object], times: int, pause_s: float) -> int:
    """How many threads appeared while ``call`` ran ``times`` times, ``pause_s`` apart."""
    before = set(threading.enumerate())
    seen: set[threading.Thread] = set()
    for _ in range(times):
        call()
        seen.update(set(threading.enumerate()) - before)
        time.sleep(pause_s)
    return len(seen)


def test_in_memory_limits_start_no_thread_per_hit() -> None:
    """``limits``' own ``MemoryStorage`` starts a 10 ms expiry timer from nearly every hit; ours sweeps in the hit."""
    item = RateLimitItemPerSecond(1000, 60)
    library = MovingWindowRateLimiter(MemoryStorage())
    assert _threads_started_by(lambda: library.hit(item, "k"), 40, 0.015) >= 20  # what was replaced
    store = LimitStore()
    assert _threads_started_by(lambda: store.hit(item, "k"), 40, 0.015) == 0


def test_in_memory_limits_still_limit_and_allow_again_after_the_window() -> None:
    limiter = RateLimiter(limit=3, window_s=1, what="tries")
    # A store that never sweeps in this test: the moving window alone must decide.
    unswept = MovingWindowRateLimiter(SweptMemoryStorage(sweep_s=3600))
    item = RateLimitItemPerSecond(3, 1)
    for _ in range(3):
        limiter.hit("a")
        assert unswept.hit(item, "a")
    with pytest.raises(RateLimitedError):
        limiter.hit("a")
    assert not unswept.hit(item, "a")
    time.sleep(1.1)
    limiter.hit("a")
    limiter.hit("a")
    assert unswept.hit(item, "a") and unswept.hit(item, "a")


def test_in_memory_limits_expire_old_hits_in_the_sweep() -> None:
    storage = SweptMemoryStorage(sweep_s=0.05)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(5, 1)
    for key in range(50):
        for _ in range(3):
            assert limiter.hit(item, f"key-{key}")
    assert len(storage.events) == 50
    time.sleep(1.1)  # every hit is out of its window
    assert limiter.hit(item, "fresh")  # sweeps first: the keys without a hit in their window go
    keys = list(storage.events)
    assert len(keys) == 1 and "fresh" in keys[0]
