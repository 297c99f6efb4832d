"""What an API process keeps in memory stays bounded under endless traffic (the soak's RSS target, issue 16).

Each structure that lives as long as the process has a bound chosen from its
measured bytes per entry (docs/reliability.md#memory): the candidate cache and the
built-page cache hold one entry per profile and filter set (a newer history replaces
the older entry instead of leaving it to expire), each under a size bound; the
remembered verified tokens stay under theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog_api.candidate_cache import TtlCache
from catalog_api.options import ApiOptions
from catalog_api.security import tokens
from catalog_api.security.tokens import TokenIssuer
from catalog_api.services.home_model import candidate_slot
from catalog_api.services.page_cache import PageInputs
from tests.api.support import ModelServerDouble, make_profile, signup_and_login, watch


def test_a_slot_holds_one_entry_the_latest_stored() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(ttl_s=10, clock=lambda: now[0], slot=lambda key: key[:1])  # type: ignore[index]
    for position in range(100):  # one profile's heartbeats: a new key each time
        cache.put(("p1", position), f"page {position}")
    cache.put(("p2", 0), "other profile")
    assert len(cache) == 2
    assert cache.get(("p1", 99)) == "page 99" and cache.get(("p1", 98)) is None  # the older history is gone
    assert cache.lookup(("p2", 0)) == ("other profile", True)
    # A refresh of a key its slot no longer holds stores nothing; forgetting matches the stored keys.
    assert cache.claim_refresh(("p1", 98))
    cache.end_refresh(("p1", 98), "late answer")
    assert cache.get(("p1", 99)) == "page 99" and cache.get(("p1", 98)) is None
    assert cache.forget(lambda key: key == ("p2", 0)) == 1 and len(cache) == 1


def test_page_and_candidate_slots_drop_only_the_history() -> None:
    def inputs(device: str, history: tuple[tuple[object, ...], ...]) -> PageInputs:
        return PageInputs("p1", device, "champion", "default", 3, False, "US", history, None, None, None)

    older, newer = inputs("tv", (("t1", 10, 1),)), inputs("tv", (("t1", 20, 2),))
    assert older.key() != newer.key() and PageInputs.slot(older.key()) == PageInputs.slot(newer.key())
    assert PageInputs.slot(inputs("mobile", (("t1", 20, 2),)).key()) != PageInputs.slot(newer.key())
    key = ("p1", "champion", 3, False, "US", "seed", (("t1", 10, 1),))
    assert candidate_slot(key) == ("p1", "champion", 3, False, "US")
    assert candidate_slot(("p1", "challenger", 3, False, "US", None, ())) != candidate_slot(key)


def test_watching_keeps_one_cached_page_and_answer_per_profile(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    _, url = model_double
    client = make_client(url)
    state = client.app.state.marquee  # type: ignore[attr-defined]
    headers = signup_and_login(client, "bounded@example.com")
    profiles = [make_profile(client, headers, name)["profile_id"] for name in ("A", "B")]
    for step in range(1, 13):  # each heartbeat changes the history, hence every cache key
        for profile in profiles:
            assert (
                watch(client, headers, profile, "m_space", step / 20, event_id=f"{profile}-{step}").status_code == 201
            )
            page = client.get(f"/v1/profiles/{profile}/home", headers=headers)
            assert page.status_code == 200
    assert page.json()["source"] == "personalized"
    assert len(state.pages) == 2 and len(state.candidates) == 2  # was 24 and 24: one per heartbeat and page


def test_the_caches_stay_under_their_size_bounds(
    make_client: Callable[..., TestClient], model_double: tuple[ModelServerDouble, str]
) -> None:
    _, url = model_double
    options = ApiOptions(row_size=6, model_budget_s=1.0, candidate_cache_entries=3, page_cache_entries=2)
    client = make_client(url, options)
    state = client.app.state.marquee  # type: ignore[attr-defined]
    for account in range(3):
        headers = signup_and_login(client, f"many-{account}@example.com")
        for name in ("A", "B"):
            profile = make_profile(client, headers, name)["profile_id"]
            watch(client, headers, profile, "m_space", 0.3)
            assert client.get(f"/v1/profiles/{profile}/home", headers=headers).status_code == 200
    assert len(state.candidates) == 3 and len(state.pages) == 2  # six profiles, least recently used dropped


def test_remembered_tokens_stay_under_their_bound(monkeypatch: Any) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 5)
    issuer = TokenIssuer("s" * 40, "marquee", "marquee-api")
    signed = [issuer.issue(f"account-{i}", "access")[0] for i in range(12)]
    for token in signed:
        issuer.verify(token, "access")
    assert issuer.remembered() == 5
    assert issuer.verify(signed[0], "access").account_id == "account-0"  # forgotten ones verify again


@pytest.mark.parametrize("entries", [0, -1])
def test_a_cache_bound_below_one_still_holds_one(entries: int) -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=10, max_entries=entries)
    cache.put("a", 1)
    cache.put("b", 2)
    assert len(cache) == 1 and cache.get("b") == 2
