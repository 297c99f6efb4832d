"""The shared rules of ``core.rules``: each decided once, with the edge cases the old copies disagreed on."""

from __future__ import annotations

import pandas as pd
import pytest

from core import rules


def test_completed_share_is_one_threshold_for_every_package() -> None:
    from experiments.outcomes import COMPLETION_SHARE
    from features.pipelines.plays import COMPLETION_THRESHOLD

    assert COMPLETION_SHARE == COMPLETION_THRESHOLD == rules.COMPLETED_SHARE
    assert rules.is_completed(rules.progress(900, 1000)) and not rules.is_completed(rules.progress(899, 1000))
    assert rules.is_in_progress(0.5) and not rules.is_in_progress(0.01) and not rules.is_in_progress(0.95)
    assert rules.progress(10, 0) == 0.0 and rules.progress(2000, 1000) == 1.0


@pytest.mark.parametrize(
    ("title_level", "countries", "max_level", "country", "expected"),
    [
        (None, [], 3, "US", False),  # a title the caller's catalog does not know is never shown
        (3, [], 1, "US", False),  # above the ceiling
        (1, [], 1, "US", True),
        (0, ["FR"], 3, "US", False),  # not licensed here
        (0, ["FR"], 3, None, False),  # unknown country: only titles licensed everywhere
        (0, [], 3, None, True),
        (0, ["FR", "US"], 3, "US", True),
    ],
)
def test_visibility(title_level: int | None, countries: list[str], max_level: int, country: str | None,
                    expected: bool) -> None:  # fmt: skip
    assert rules.may_see(title_level, countries, max_level, country) is expected


def test_a_kids_profile_never_goes_above_the_kids_level() -> None:
    assert rules.viewer_level(3, is_kids=True) == rules.KIDS_MAX_LEVEL
    assert rules.viewer_level(0, is_kids=True) == 0
    assert rules.viewer_level(None) == 3 and rules.viewer_level(2) == 2


def test_aliases_layouts_and_canonical_titles_have_one_definition() -> None:
    from experiments.spec import LAYOUTS, MODEL_ALIASES

    assert MODEL_ALIASES == rules.MODEL_ALIASES and set(LAYOUTS) == set(rules.LAYOUTS)
    assert rules.model_alias("challenger") == "challenger" and rules.model_alias("nonsense") == rules.CHAMPION
    assert rules.layout_rows("unknown") == rules.LAYOUTS[rules.DEFAULT_LAYOUT]
    for rows in rules.LAYOUTS.values():
        assert sorted(rows) == sorted(rules.LAYOUTS[rules.DEFAULT_LAYOUT]) and rows[0] == "continue_watching"
    assert rules.canonical_title("s1:1:2", {"s1:1:2": "s1"}) == "s1" and rules.canonical_title("m1", {}) == "m1"


def test_trending_is_aged_on_the_datas_clock_so_a_few_fresh_events_do_not_top_it() -> None:
    """A history that ends in 2024 and three watches stamped today (under 1 % of plays) weigh three recent plays."""
    end = pd.Timestamp("2024-06-30", tz="UTC")
    rows = [(f"p{i}", "hit", end - pd.Timedelta(minutes=i)) for i in range(400)]  # 400 viewers in the last days
    rows += [(f"q{i}", "old", end - pd.Timedelta(days=300 + i)) for i in range(100)]  # popular long ago
    rows += [("kid", t, pd.Timestamp("2026-12-06", tz="UTC")) for t in ("new1", "new2", "new3")]
    events = pd.DataFrame(rows, columns=["profile_id", "title_id", "ts"])
    scores = rules.popularity_scores(events, lambda t: None if t == "unknown" else t)
    trending = sorted(scores.trending, key=lambda t: -scores.trending[t])
    assert trending[0] == "hit", scores.trending
    assert scores.trending["new1"] == pytest.approx(1.0)  # after the clock: weighs one play, no more
    assert scores.plays["old"] == 100 and scores.trending["old"] < 1.0
    assert scores.clock is not None and scores.clock < pd.Timestamp("2025-01-01", tz="UTC")
    assert rules.popularity_scores(events.iloc[:0], lambda t: t).plays == {}


def test_a_request_carries_each_title_once_at_its_latest_watch_the_newest_only() -> None:
    from serving.contract import MAX_HISTORY

    assert MAX_HISTORY == rules.MAX_HISTORY, "the contract's cap is the rule's"
    assert rules.request_history(["a", "b", "a", "c"]) == ["b", "a", "c"]
    assert rules.request_history([]) == []
    long = [f"t{i}" for i in range(rules.MAX_HISTORY + 50)]
    assert rules.request_history(long) == long[50:]
