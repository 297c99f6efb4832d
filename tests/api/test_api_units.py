"""Units with a known right answer: circuit breaker, rate limiter, popularity, operations endpoints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from purgatory.domain.model import OpenedState

from catalog_api.candidate_cache import TtlCache
from catalog_api.errors import RateLimitedError
from catalog_api.recommender_client import BreakerState, ModelServerBreaker
from catalog_api.security.rate_limit import RateLimiter
from catalog_api.services.catalog_cache import CatalogEpisode, CatalogSnapshot, CatalogTitle
from catalog_api.services.exposures import ExposurePage, keys_distinct, pages_table
from catalog_api.services.popularity import compute_popularity
from core.errors import SchemaError, ServiceUnavailableError
from core.lake import to_arrow
from core.tables import EXPOSURES

from .support import make_profile, signup_and_login


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_circuit_breaker_opens_then_half_opens_and_a_probe_decides() -> None:
    """The model server's breaker (purgatory's): consecutive failures open it, the cool-down half-opens it."""

    async def scenario() -> None:
        breaker = ModelServerBreaker(failures=3, cooldown_s=0.2)

        async def call(ok: bool) -> None:
            async with await breaker.guard():
                if not ok:
                    raise ServiceUnavailableError("model server failed")

        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await call(False)
        await call(True)  # a success in between resets the count: failures must be consecutive
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await call(False)
        assert breaker.state is BreakerState.CLOSED
        with pytest.raises(ServiceUnavailableError):
            await call(False)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(OpenedState):
            await call(True)  # refused without calling
        await asyncio.sleep(0.25)
        assert breaker.state is BreakerState.HALF_OPEN
        with pytest.raises(ServiceUnavailableError):
            await call(False)  # the probe failed: open for another cool-down
        assert breaker.state is BreakerState.OPEN
        await asyncio.sleep(0.25)
        await call(True)
        assert breaker.state is BreakerState.CLOSED

    asyncio.run(scenario())


def test_rate_limiter_moving_window_and_retry_after() -> None:
    limiter = RateLimiter(limit=2, window_s=10, what="tries")
    limiter.hit("a")
    limiter.hit("a")
    with pytest.raises(RateLimitedError) as raised:
        limiter.hit("a")
    assert 1 <= raised.value.retry_after <= 10  # until the first hit leaves the window
    limiter.hit("b")  # keys are independent
    limiter.reset("a")
    limiter.hit("a")


def _title(tid: str, genres: tuple[str, ...], kind: str = "movie") -> CatalogTitle:
    return CatalogTitle(tid, kind, tid, "", genres, (), "", 3, 2000, None, None, (), (), frozenset(), ())


def test_popularity_counts_profiles_once_and_episodes_for_their_series() -> None:
    snapshot = CatalogSnapshot(
        [_title("a", ("Drama",)), _title("b", ("Comedy",)), _title("s", ("Drama",), "series")],
        [CatalogEpisode("s:1:1", "s", 1, 1, "", 10), CatalogEpisode("s:1:2", "s", 1, 2, "", 10)],
    )
    ts = pd.Timestamp("2026-01-10", tz="UTC")
    events = pd.DataFrame(
        {
            "profile_id": ["p1", "p1", "p1", "p2", "p3", "p3", "p4"],
            "title_id": ["a", "a", "a", "a", "s:1:1", "s:1:2", "s:1:1"],
            "ts": [ts - pd.Timedelta(days=30)] * 4 + [ts] * 3,
        }
    )
    table = compute_popularity(events, snapshot)
    assert table.plays == {"a": 2.0, "s": 2.0}
    assert table.popular[2] == "b"  # unplayed titles come last
    assert table.trending[0] == "s"  # same plays, more recent
    assert table.genre_order[0] == "Drama" and table.by_genre["Comedy"] == ["b"]


def test_audience_lists_keep_exactly_the_titles_the_rule_lets_the_audience_see() -> None:
    from dataclasses import replace

    from core.rules import may_see

    titles = [
        _title("a", ("Drama",)),
        replace(_title("adult", ("Drama",)), maturity_level=4),
        replace(_title("us-only", ("Comedy",)), countries=frozenset({"US"})),
        _title("b", ("Comedy",)),
    ]
    snapshot = CatalogSnapshot(titles, [])
    events = pd.DataFrame(
        {"profile_id": ["p1", "p2"], "title_id": ["adult", "us-only"], "ts": [pd.Timestamp("2026-01-01", tz="UTC")] * 2}
    )
    table = compute_popularity(events, snapshot)
    for level, country in ((3, "FR"), (3, "US"), (4, "US"), (0, "")):
        audience = table.for_audience(snapshot, level, country)
        allowed = {t.title_id for t in titles if may_see(t.maturity_level, t.countries, level, country)}
        assert audience.popular == [t for t in table.popular if t in allowed]
        assert audience.trending == [t for t in table.trending if t in allowed]
        assert audience.by_genre == {g: [t for t in ids if t in allowed] for g, ids in table.by_genre.items()}
    assert "adult" not in table.for_audience(snapshot, 3, "US").popular
    assert "us-only" not in table.for_audience(snapshot, 4, "FR").popular
    assert table.for_audience(snapshot, 3, "US") is table.for_audience(snapshot, 3, "US")  # kept per audience


def test_a_popularity_refresh_prepares_the_audiences_pages_asked_for(client: TestClient) -> None:
    """The lists of an audience already served are filtered in the refresh thread, not by the next page."""
    service = client.app.state.marquee.popularity  # type: ignore[attr-defined]
    snapshot = client.app.state.marquee.catalog.snapshot  # type: ignore[attr-defined]
    before = service.table
    before.for_audience(snapshot, 2, "US")
    refreshed = service.refresh()
    assert refreshed is not before and refreshed is service.table
    assert (2, "US") in refreshed._audiences and refreshed._audiences[(2, "US")][0] is snapshot
    assert (3, "FR") not in refreshed._audiences


def test_request_ids_health_readiness_and_metrics(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.json() == {"status": "ok"} and response.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["checks"]["catalog_titles"] == 51
    headers = signup_and_login(client, "a@example.com")
    make_profile(client, headers, "A")
    client.get("/v1/profiles/nope", headers=headers)
    metrics = client.get("/metrics").text
    assert 'marquee_api_requests_total{method="GET",route="/v1/profiles/{profile_id}",status="404"} 1.0' in metrics
    assert "marquee_api_request_seconds_bucket" in metrics
    error = client.get("/v1/profiles/nope", headers=headers).json()
    assert error["error"] == "NotFoundError" and error["request_id"]


def test_exposure_table_equals_one_exposure_per_title_shown() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    pages = [
        ExposurePage(
            f"r{i}",
            ts + timedelta(milliseconds=i),  # each page's own values land on its own rows
            f"p{i}",
            [("top_picks", "v7", [f"t{j}" for j in range(i % 4)]), ("trending", "popularity", ["x", "y"])],
            [("exp-a", "control"), ("exp-b", "b")] if i % 2 else [],
        )
        for i in range(6)
    ]
    pages.append(ExposurePage("empty", ts, "p", [], []))
    table = pages_table(pages)
    expected = [e.model_dump() for page in pages for e in page.exposures()]
    assert table.num_rows == len(expected) == sum(len(page) for page in pages)
    assert table.to_pylist() == expected
    assert pages_table([]).num_rows == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3"]),
            st.lists(
                st.tuples(st.sampled_from(["top_picks", "trending", "genre:Drama"]), st.integers(1, 3)), max_size=3
            ),
            st.lists(st.tuples(st.sampled_from(["exp-a", "exp-b"]), st.sampled_from(["control", "b"])), max_size=2),
        ),
        max_size=4,
    )
)
def test_the_exposure_flush_skips_the_lakes_key_check_only_when_the_keys_are_distinct(
    drawn: list[tuple[str, list[tuple[str, int]], list[tuple[str, str]]]],
) -> None:
    ts = datetime(2026, 1, 2, tzinfo=UTC)
    pages = [
        ExposurePage(rid, ts, "p", [(key, "v1", [f"t{j}" for j in range(n)]) for key, n in rows], arms)
        for rid, rows, arms in drawn
    ]
    table = pages_table(pages)
    try:
        to_arrow(EXPOSURES, table)  # the lake's own group-by over the four key columns
        lake_says_distinct = True
    except SchemaError:
        lake_says_distinct = False
    # The pages' check may be stricter (a repeated key that writes no rows: a row with no titles, a
    # page with no rows; one request id on two pages, which ``unique_pages`` renames before a flush),
    # never looser. Where each key writes rows, the two agree.
    assert not keys_distinct(pages) or lake_says_distinct
    writes_every_key = all(rows and all(n for _, n in rows) for _, rows, _ in drawn)
    if writes_every_key and len({rid for rid, _, _ in drawn}) == len(drawn):
        assert keys_distinct(pages) == lake_says_distinct


def test_ttl_cache_expires_spreads_lifetimes_and_stays_bounded() -> None:
    now = [0.0]
    cache: TtlCache[int] = TtlCache(ttl_s=10, max_entries=50, clock=lambda: now[0])
    for i in range(100):
        cache.put(("profile", i), i)
    assert len(cache) == 50 and cache.get(("profile", 0)) is None and cache.get(("profile", 99)) == 99
    now[0] = 7.9
    assert all(cache.get(("profile", i)) == i for i in range(50, 100)), "an entry died before 80% of its ttl"
    now[0] = 9.0
    alive = sum(cache.get(("profile", i)) is not None for i in range(50, 100))
    assert 0 < alive < 50, "lifetimes are not spread between 80% and 100% of the ttl"
    now[0] = 10.0
    assert all(cache.get(("profile", i)) is None for i in range(100))
    off: TtlCache[int] = TtlCache(ttl_s=0)
    off.put("k", 1)
    assert off.get("k") is None and len(off) == 0


def test_ttl_cache_serves_stale_entries_with_one_refresh_at_a_time() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(ttl_s=10, clock=lambda: now[0], stale_s=5)
    cache.put("k", "old")
    assert cache.lookup("k") == ("old", True)
    now[0] = 12.0
    assert cache.lookup("k") == ("old", False) and cache.get("k") is None  # get never serves stale
    cache.put("k", "old")
    now[0] = 22.0
    assert cache.lookup("k") == ("old", False)
    assert cache.claim_refresh("k") and not cache.claim_refresh("k"), "two refreshes of one key at once"
    cache.end_refresh("k", "new")
    assert cache.lookup("k") == ("new", True) and cache.claim_refresh("k")
    cache.forget(lambda key: key == "k")  # erased while a refresh was in flight: it must not come back
    cache.end_refresh("k", "resurrected")
    assert cache.lookup("k") is None
    cache.put("gone", "x")
    now[0] = 22.0 + 10 + 5
    assert cache.lookup("gone") is None and len(cache) == 0


def test_a_refresh_with_an_equal_answer_keeps_the_stored_object() -> None:
    """What was built from a cached answer checks it by identity: an unchanged answer must not invalidate it."""
    now = [0.0]
    cache: TtlCache[list[str]] = TtlCache(ttl_s=10, clock=lambda: now[0], stale_s=5)
    stored = ["t1", "t2"]
    cache.put("k", stored)
    now[0] = 11.0
    assert cache.claim_refresh("k")
    cache.end_refresh("k", ["t1", "t2"])
    found = cache.lookup("k")
    assert found is not None and found[0] is stored and found[1], "an equal answer replaced the object or stayed stale"
    now[0] = 22.0
    assert cache.claim_refresh("k")
    cache.end_refresh("k", ["t2", "t1"])
    found = cache.lookup("k")
    assert found is not None and found[0] == ["t2", "t1"] and found[1]


def test_home_page_bytes_equal_the_response_model_serialisation() -> None:
    """The assembled home JSON is byte for byte what ``HomeResponse`` would produce, quotes and unicode included."""
    from catalog_api.schemas.home import ExperimentInfo, HomeResponse, HomeRow, PrefetchHint
    from catalog_api.services.home_json import HomePage, PageRow, item_json, row_item

    odd = 'Amélie "Ω" \\ 東京'
    series = CatalogTitle("t2", "series", odd, "", ("Anime",), (), "TV", 3, None, None, None, (), (), frozenset(), ())
    titles = [_title("t1", ("Dramas",)), series]
    snapshot = CatalogSnapshot(titles, [])
    plain = PageRow("top_picks", "Top Picks for You", ["t1", "t2"], [item_json(snapshot, t) for t in titles])
    resume = row_item(titles[1], episode_id="t2-s1e2", position_s=42)
    cw = PageRow("continue_watching", "Continue Watching", ["t2"], [resume.model_dump_json().encode()], ["t2-s1e2"])
    arms = [{"experiment_key": "home-layout", "variant": "b"}]
    experiment = ExperimentInfo(assignments=arms, variant="b", layout="genre_first", model_version="7")
    hints = [PrefetchHint(title_id="t1", quality="720p", urls=["https://cdn/x?sig=1&exp=2"])]
    page = HomePage("req-1", [cw, plain], "fallback", "model_timeout", experiment, hints)
    expected = HomeResponse(
        request_id="req-1",
        rows=[
            HomeRow(key="continue_watching", title="Continue Watching", items=[resume]),
            HomeRow(key="top_picks", title="Top Picks for You", items=[row_item(t) for t in titles]),
        ],
        source="fallback",
        fallback_reason="model_timeout",
        experiment=experiment,
        prefetch=hints,
    )
    assert page.to_json() == expected.model_dump_json().encode()
    assert page.to_model() == expected
    personalized = HomePage("req-2", [], "personalized", None, experiment, [])
    assert personalized.to_model().fallback_reason is None and personalized.to_model().rows == []


def test_popularity_refreshes_of_api_workers_are_spread_not_simultaneous(tmp_path: Path) -> None:
    """Workers start together: each must draw its own refresh period, within 80-100 % of the setting."""
    from catalog_api.services.popularity import PopularityService
    from core.lake import Lake

    services = [PopularityService(Lake(tmp_path), None, lambda: CatalogSnapshot([], []), 300.0) for _ in range(20)]  # type: ignore[arg-type]
    lifetimes = [service._lifetime_s for service in services]
    assert all(240.0 <= lifetime <= 300.0 for lifetime in lifetimes)
    assert len({round(lifetime, 3) for lifetime in lifetimes}) > 10, "the workers would refresh in the same second"


def test_a_half_open_circuit_lets_one_probe_through_at_a_time() -> None:
    """purgatory admits every call while half-open; ``admit`` keeps it to one probe, the rest are refused."""

    async def scenario() -> None:
        breaker = ModelServerBreaker(failures=1, cooldown_s=0.1)
        with pytest.raises(ServiceUnavailableError):
            async with breaker.admit():
                raise ServiceUnavailableError("model server failed")
        await asyncio.sleep(0.15)
        assert breaker.state is BreakerState.HALF_OPEN
        release = asyncio.Event()
        entered: list[int] = []

        async def probe() -> None:
            async with breaker.admit():
                entered.append(1)
                await release.wait()

        first = asyncio.create_task(probe())
        await asyncio.sleep(0.01)
        with pytest.raises(OpenedState):  # a second call while the probe is in flight
            async with breaker.admit():
                entered.append(2)
        release.set()
        await first
        assert entered == [1] and breaker.state is BreakerState.CLOSED
        async with breaker.admit(), breaker.admit():  # closed: calls go through again, concurrently too
            entered.append(3)
        assert entered == [1, 3]

    asyncio.run(scenario())


def test_a_served_worker_freezes_start_up_objects_and_collects_less_often() -> None:
    """``freeze_startup_objects`` (run by ``marquee serve api`` in each worker) sets the collector up for serving."""
    import gc
    import sys

    from catalog_api.app import GC_THRESHOLDS, SWITCH_INTERVAL_S, freeze_startup_objects

    thresholds, switch = gc.get_threshold(), sys.getswitchinterval()
    try:
        freeze_startup_objects()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > thresholds[0]
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(switch)
