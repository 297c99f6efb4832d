"""Home rows: filters everywhere, no duplicates, personalization, fallback, circuit breaker, exposures."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from catalog_api.app import export_events_now
from catalog_api.options import ApiOptions
from catalog_api.playback.signing import verify_signed_url
from catalog_api.services.home import NOTICES
from experiments.spec import Experiment
from experiments.store import ExperimentStore

from .support import ModelServerDouble, catalog_frames, make_profile, signup_and_login, watch

LEVELS = {t.title_id: t.maturity_level for t in catalog_frames()[0].itertuples()}
COUNTRIES = {t.title_id: list(t.countries) for t in catalog_frames()[0].itertuples()}


def _home(client: TestClient, headers: dict[str, str], profile_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/profiles/{profile_id}/home", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _items(page: dict[str, Any]) -> list[str]:
    return [item["title_id"] for row in page["rows"] for item in row["items"]]


def _check_page_rules(page: dict[str, Any], level: int, country: str) -> None:
    ids = _items(page)
    assert len(ids) == len(set(ids)), "a title appears twice on the page"
    for title_id in ids:
        assert LEVELS[title_id] <= level, f"{title_id} (level {LEVELS[title_id]}) shown to a level-{level} profile"
        assert not COUNTRIES[title_id] or country in COUNTRIES[title_id], f"{title_id} not licensed in {country}"


def test_fallback_rows_obey_filters_when_the_model_server_is_down(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="US")
    kid = make_profile(client, headers, "Kid", is_kids=True)["profile_id"]
    adult = make_profile(client, headers, "Adult")["profile_id"]
    new_page = _home(client, headers, kid)
    assert (new_page["source"], new_page["fallback_reason"]) == ("fallback", "new_profile")
    watch(client, headers, kid, "m_robots", 0.5)
    watch(client, headers, adult, "m_crime", 0.5)
    for profile, level in ((kid, 1), (adult, 3)):
        page = _home(client, headers, profile)
        assert page["source"] == "fallback" and page["fallback_reason"] in ("model_unavailable", "circuit_open")
        _check_page_rules(page, level, "US")
        keys = [row["key"] for row in page["rows"]]
        assert keys[:2] == ["continue_watching", "top_picks"]
        assert "trending" in keys
    adult_page = _home(client, headers, adult)
    assert any(k.startswith("genre:") for k in (row["key"] for row in adult_page["rows"]))
    assert any(row["key"] == "new_releases" for row in adult_page["rows"])


def test_personalized_rows_differ_with_history_and_are_still_filtered(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    double.ignore_filters = True  # the double proposes adult titles: the API must drop them for kids
    client = make_client(serving_url=url)
    headers = signup_and_login(client, "a@example.com", country="US")
    scifi = make_profile(client, headers, "SciFi")["profile_id"]
    crime = make_profile(client, headers, "Crime")["profile_id"]
    kid = make_profile(client, headers, "Kid", is_kids=True)["profile_id"]
    watch(client, headers, scifi, "m_space", 0.95)
    watch(client, headers, crime, "m_crime", 0.95)
    watch(client, headers, kid, "m_robots", 0.95)
    assert export_events_now(client.app.state.marquee) == 3  # type: ignore[attr-defined]
    pages = {p: _home(client, headers, p) for p in (scifi, crime, kid)}
    for profile, page in pages.items():
        assert page["source"] == "personalized", page
        assert page["experiment"]["model_version"] == double.version
        _check_page_rules(page, 1 if profile == kid else 3, "US")
    picks = {p: [i["title_id"] for i in page["rows"][0]["items"]] for p, page in pages.items()}
    assert pages[scifi]["rows"][0]["key"] == "top_picks"
    assert picks[scifi] != picks[crime]
    # Each profile's first pick shares the genres of what it watched.
    assert set(_genres(picks[scifi][0])) & {"Sci-Fi", "Action"}
    assert set(_genres(picks[crime][0])) & {"Crime", "Drama"}
    because = [r for r in pages[scifi]["rows"] if r["key"].startswith("because_you_watched:")]
    assert because and because[0]["key"] == "because_you_watched:m_space"


def test_a_title_the_viewer_only_sampled_is_not_picked_for_them(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    double.propose_played = True  # the double now ranks what was played first: it shares all its genres
    client = make_client(serving_url=url)
    headers = signup_and_login(client, "a@example.com", country="US")
    profile = make_profile(client, headers, "A")["profile_id"]
    # A few seconds of each: below ``STARTED_SHARE``, so neither is worth resuming.
    watch(client, headers, profile, "m_space", 0.01)
    watch(client, headers, profile, "s_lane:1:1", 0.01)
    page = _home(client, headers, profile)
    assert page["source"] == "personalized"
    rows = {row["key"]: [item["title_id"] for item in row["items"]] for row in page["rows"]}
    assert "continue_watching" not in rows
    assert rows["top_picks"], page
    for sampled in ("m_space", "s_lane"):
        assert sampled not in rows["top_picks"], f"Top Picks proposed {sampled}, sampled a moment ago"
        assert all(sampled not in ids for key, ids in rows.items() if key.startswith("because_you_watched:"))


def _watching(client: TestClient) -> tuple[TestClient, dict[str, str], str]:
    """A signed-in account with one profile that has watched half of ``m_space``."""
    headers = signup_and_login(client, "a@example.com", country="US")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_space", 0.5)
    return client, headers, profile


def test_candidate_cache_reuses_an_answer_until_the_history_changes(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    options = ApiOptions(candidate_ttl_s=60, model_budget_s=2.0)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    first = _home(client, headers, profile)
    again = _home(client, headers, profile)
    assert first["source"] == again["source"] == "personalized"
    assert double.calls == ["home_candidates"], "the same profile, variant and history asked the model server twice"
    assert [r["items"] for r in first["rows"]] == [r["items"] for r in again["rows"]]
    assert first["request_id"] != again["request_id"]

    double.version = "double-v2"
    watch(client, headers, profile, "m_crime", 0.5)  # a new heartbeat: the cached answer no longer applies
    after = _home(client, headers, profile)
    assert double.calls == ["home_candidates", "home_candidates"]
    assert after["experiment"]["model_version"] == "double-v2"
    metrics = client.get("/metrics").text
    assert 'marquee_api_candidate_cache_total{result="hit"} 1.0' in metrics
    assert 'marquee_api_candidate_cache_total{result="miss"} 2.0' in metrics


def test_an_expired_answer_is_served_while_one_background_call_refreshes_it(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    # The refresh (1.5 s) is slower than a page may wait (1.0 s): it has a budget of its own. The
    # page budget is generous so that the first, cold call answers in time on a loaded CI machine.
    options = ApiOptions(candidate_ttl_s=1.0, model_budget_s=1.0)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    assert _home(client, headers, profile)["experiment"]["model_version"] == "double-v1"
    time.sleep(1.05)  # past every lifetime (0.8-1.0 s), inside the stale window (another 1.0 s)
    double.version, double.mode, double.delay_s = "double-v2", "slow", 1.5
    started = time.perf_counter()
    stale_pages = [_home(client, headers, profile) for _ in range(3)]
    assert time.perf_counter() - started < 1.0, "a page waited for the refresh"
    assert all(p["source"] == "personalized" and p["experiment"]["model_version"] == "double-v1" for p in stale_pages)
    assert all(p["notice"] == NOTICES["stale"] for p in stale_pages), "a stale page passed itself off as fresh"
    deadline = time.monotonic() + 5
    while len(double.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.6)  # the refresh's answer lands in the cache
    assert double.calls == ["home_candidates"] * 2, "three stale pages made more than one refresh call"
    refreshed = _home(client, headers, profile)
    assert refreshed["experiment"]["model_version"] == "double-v2" and len(double.calls) == 2
    assert refreshed["notice"] is None
    metrics = client.get("/metrics").text
    assert 'marquee_api_candidate_cache_total{result="stale"} 3.0' in metrics


def test_pages_that_miss_together_share_one_model_server_call(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    options = ApiOptions(candidate_ttl_s=60, model_budget_s=2.0)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    double.mode, double.delay_s = "slow", 0.5
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: _home(client, headers, profile), range(4)))
    assert all(p["source"] == "personalized" for p in pages)
    assert double.calls == ["home_candidates"], "four simultaneous misses of one page made several calls"


def test_a_repeated_page_is_reused_but_logged_again_and_any_new_input_rebuilds_it(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    options = ApiOptions(candidate_ttl_s=60, model_budget_s=2.0)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    state = client.app.state.marquee  # type: ignore[attr-defined]
    first, again = _home(client, headers, profile), _home(client, headers, profile)
    assert first["rows"] == again["rows"] and first["prefetch"] == again["prefetch"]
    assert len(state.pages) == 1
    for page in (first, again):  # every serving is an exposure, cached page or not
        logged = [e for e in state.exposures.pending() if e.request_id == page["request_id"]]
        assert len(logged) == len(_items(page))
    # A new heartbeat: the resume position on Continue Watching must move.
    watch(client, headers, profile, "m_space", 0.75)
    moved = _home(client, headers, profile)
    assert _resume(moved)["m_space"] > _resume(first)["m_space"]
    # A new popularity table (recomputed every few minutes) rebuilds the page too.
    old_table = state.popularity.table
    state.popularity.refresh()
    assert state.popularity.table is not old_table
    rebuilt = _home(client, headers, profile)
    assert rebuilt["rows"] == moved["rows"] and len(double.calls) == 2
    tables = [page.inputs.popularity for *_, page in state.pages._entries.values()]
    assert any(t is state.popularity.table for t in tables), "the page was served from the old table"


def test_a_new_url_expiry_step_re_signs_the_hints_but_keeps_the_rows(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    # URLs living 10 s are signed in 1 s steps: the step moves within the test.
    options = ApiOptions(candidate_ttl_s=60, model_budget_s=2.0, url_ttl_s=10)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    state = client.app.state.marquee  # type: ignore[attr-defined]
    first = _home(client, headers, profile)
    (built,) = [page for *_, page in state.pages._entries.values()]
    time.sleep(1.1)
    later = _home(client, headers, profile)
    (cached,) = [page for *_, page in state.pages._entries.values()]
    assert cached.rows is built.rows, "the rows were rebuilt although only the URLs' expiry moved"
    assert later["rows"] == first["rows"] and len(double.calls) == 1
    expiry = {
        name: [parse_qs(urlsplit(u).query)["expires"][0] for hint in page["prefetch"] for u in hint["urls"]]
        for name, page in (("first", first), ("later", later))
    }
    assert expiry["first"] and expiry["later"] and expiry["first"] != expiry["later"]
    key = state.settings.cdn_signing_key
    for hint in later["prefetch"]:
        for signed in hint["urls"]:
            verify_signed_url(signed, key)
            assert int(parse_qs(urlsplit(signed).query)["expires"][0]) <= time.time() + 10


def _resume(page: dict[str, Any]) -> dict[str, int]:
    rows = [r for r in page["rows"] if r["key"] == "continue_watching"]
    return {i["title_id"]: i["position_s"] for r in rows for i in r["items"]}


def test_no_candidate_cache_when_its_ttl_is_zero(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    options = ApiOptions(candidate_ttl_s=0, model_budget_s=2.0)
    client, headers, profile = _watching(make_client(serving_url=url, options=options))
    for _ in range(3):
        assert _home(client, headers, profile)["source"] == "personalized"
    assert double.calls == ["home_candidates"] * 3


def _genres(title_id: str) -> list[str]:
    frame = catalog_frames()[0]
    return list(frame.loc[frame["title_id"] == title_id, "genres"].item())


def test_slow_model_server_falls_back_within_the_budget(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    double.mode, double.delay_s = "slow", 2.0
    client = make_client(serving_url=url, options=ApiOptions(model_budget_s=0.15))
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_space", 0.5)
    started = time.perf_counter()
    page = _home(client, headers, profile)
    elapsed = time.perf_counter() - started
    assert page["source"] == "fallback" and page["fallback_reason"] == "model_timeout"
    assert elapsed < 1.0, f"home took {elapsed:.2f}s with a 0.15 s model budget"


def test_circuit_breaker_stops_calling_a_failing_server_and_probes_for_recovery(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    double, url = model_double
    double.mode = "error"
    # A budget far above the double's answer time: on a loaded machine the first call (a new
    # connection) could pass 150 ms and count as a timeout, which is not what this test is about.
    options = ApiOptions(breaker_failures=2, breaker_cooldown_s=0.5, model_budget_s=2.0)
    client = make_client(serving_url=url, options=options)
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_space", 0.5)
    export_events_now(client.app.state.marquee)  # type: ignore[attr-defined]
    reasons = [_home(client, headers, profile)["fallback_reason"] for _ in range(5)]
    assert reasons[0] == "model_unavailable"
    assert reasons[-1] == "circuit_open"
    calls_when_open = len(double.calls)
    for _ in range(3):
        assert _home(client, headers, profile)["fallback_reason"] == "circuit_open"
    assert len(double.calls) == calls_when_open, "the open circuit still called the model server"
    double.mode = "ok"
    time.sleep(0.6)  # cool-down over: one probe goes through and closes the circuit
    page = _home(client, headers, profile)
    assert page["source"] == "personalized"
    assert len(double.calls) > calls_when_open
    metrics = client.get("/metrics").text
    assert 'marquee_api_home_pages_total{reason="circuit_open",source="fallback"}' in metrics


def test_every_served_item_is_logged_as_an_exposure(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_space", 0.5)
    page = _home(client, headers, profile)
    state = client.app.state.marquee  # type: ignore[attr-defined]
    assert state.exposures.flush() == len(_items(page))
    exposures = state.lake.read("exposures")
    assert set(exposures["request_id"]) == {page["request_id"]}
    served = {(row["key"], pos, item["title_id"]) for row in page["rows"] for pos, item in enumerate(row["items"])}
    logged = set(zip(exposures["row_key"], exposures["position"], exposures["title_id"], strict=True))
    assert logged == served
    assert set(exposures["model_version"]) == {"popularity"}


def test_pages_sent_with_one_client_request_id_are_all_logged(client: TestClient) -> None:
    """A client's X-Request-ID is not unique: each page still gets its own exposure key, and the flush succeeds."""
    headers = signup_and_login(client, "same-id@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    state = client.app.state.marquee  # type: ignore[attr-defined]
    state.exposures.flush()
    pages = []
    for device in ("web", "tv", "web"):
        response = client.get(
            f"/v1/profiles/{profile}/home", params={"device": device}, headers={**headers, "X-Request-ID": "retry-1"}
        )
        assert response.status_code == 200 and response.headers["x-request-id"] == "retry-1"
        pages.append(response.json())
    ids = [page["request_id"] for page in pages]
    assert len(set(ids)) == 3 and all(i.startswith("retry-1.") for i in ids), ids
    assert state.exposures.flush() == sum(len(_items(page)) for page in pages)
    assert state.exposures.buffered == 0
    assert set(ids) <= set(state.lake.read("exposures")["request_id"])
    own = _home(client, headers, profile)  # no client id: the server's id is the page's
    assert "." not in own["request_id"]


def _experiment(profile_id: str, payload: dict[str, str]) -> Experiment:
    return Experiment.model_validate(
        {
            "key": "home-test",
            "layer": "home",
            "allocation": 100,
            "variants": [
                {"name": "control", "weight": 50, "payload": {"layout": "default"}},
                {"name": "treatment", "weight": 50, "payload": payload},
            ],
            "status": "running",
            "forced": {profile_id: "treatment"},
        }
    )


def test_experiment_assignment_chooses_layout_and_variant(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str], tmp_path: Path
) -> None:
    _, url = model_double
    store_dir = tmp_path / "experiments"
    client = make_client(serving_url=url, options=ApiOptions(experiments_dir=store_dir))
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "m_crime", 0.95)
    export_events_now(client.app.state.marquee)  # type: ignore[attr-defined]
    assert _home(client, headers, profile)["experiment"]["layout"] == "default"
    ExperimentStore(store_dir).put(_experiment(profile, {"layout": "genre_first", "ranker": "challenger"}))
    client.app.state.marquee.experiments.invalidate()  # type: ignore[attr-defined]
    page = _home(client, headers, profile)
    assert page["experiment"]["layout"] == "genre_first" and page["experiment"]["variant"] == "challenger"
    assert page["experiment"]["assignments"][0]["experiment_key"] == "home-test"
    keys = [row["key"] for row in page["rows"]]
    assert keys[0].startswith("genre:"), keys  # no continue watching: the only title was finished
    assert keys.index("top_picks") > keys.index(keys[0])
    state = client.app.state.marquee  # type: ignore[attr-defined]
    logged = [e for e in state.exposures.pending() if e.request_id == page["request_id"]]
    assert logged and {(e.experiment_key, e.variant) for e in logged} == {("home-test", "treatment")}


def test_prefetch_hints_are_signed_first_segments(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    watch(client, headers, profile, "s_lane:1:1", 0.4)
    page = _home(client, headers, profile)
    hints = page["prefetch"]
    assert 1 <= len(hints) <= 3
    assert hints[0]["title_id"] == "s_lane:1:1"  # what the profile is watching comes first
    key = client.app.state.marquee.settings.cdn_signing_key  # type: ignore[attr-defined]
    for url in hints[0]["urls"]:
        assert verify_signed_url(url, key).startswith("/v/s_lane:1:1/480p/")


@pytest.mark.parametrize("device", ["tv", "mobile"])
def test_home_never_5xx_on_bad_device(client: TestClient, device: str) -> None:
    headers = signup_and_login(client, "a@example.com")
    profile = make_profile(client, headers, "A")["profile_id"]
    assert client.get(f"/v1/profiles/{profile}/home", params={"device": device}, headers=headers).status_code == 200
    assert client.get(f"/v1/profiles/{profile}/home", params={"device": "fridge"}, headers=headers).status_code == 422
