"""The coverage floor (``models.coverage_floor``): the last top-k slots go to titles nobody is shown."""

from __future__ import annotations

import pytest

from models.coverage_floor import fill_to_coverage, shown_titles

K = 10


def _lists(n_profiles: int) -> dict[str, list[str]]:
    """Every profile's top 10 is the same ten titles; below the cut each has two titles of its own."""
    shared = [f"p{k}" for k in range(K)]
    return {f"u{u}": [*shared, f"own{u}a", f"own{u}b", *[f"tail{k}" for k in range(8)]] for u in range(n_profiles)}


def test_the_floor_brings_unshown_titles_into_the_last_slots_until_the_target() -> None:
    lists = _lists(4)
    assert shown_titles(lists) == K
    result = fill_to_coverage(lists, target_titles=K + 3)
    assert result.titles_before == K and result.titles_after == K + 3 == shown_titles(result.lists)
    assert result.swaps == 3 and result.profiles_touched == 3
    for profile, ranked in result.lists.items():
        before = lists[profile]
        assert sorted(ranked) == sorted(before)  # same titles, only reordered: nothing lost below the cut
        assert ranked[: K - 1] == before[: K - 1]  # the model's first places are untouched
    touched = [p for p in lists if result.lists[p] != lists[p]]
    for profile in touched:
        ranked = result.lists[profile]
        assert ranked[K - 1].startswith("own") and ranked[K] == "p9"  # newcomer in, the displaced title just below


def test_the_floor_stops_at_the_target_and_leaves_lists_alone_when_they_already_reach_it() -> None:
    lists = _lists(3)
    same = fill_to_coverage(lists, target_titles=K)
    assert same.lists == lists and same.swaps == 0
    assert fill_to_coverage(lists, target_titles=0).swaps == 0


def test_a_title_only_one_profile_shows_is_never_given_up() -> None:
    """Swapping a profile's only-here title for another would not raise coverage: no swap."""
    lists = {"a": [f"a{k}" for k in range(K)] + ["x"], "b": [f"b{k}" for k in range(K)] + ["y"]}
    result = fill_to_coverage(lists, target_titles=2 * K + 2)
    assert result.swaps == 0 and result.lists == lists


def test_the_floor_uses_more_slots_only_when_one_each_is_not_enough() -> None:
    lists = _lists(3)  # three profiles, two unshown titles each below the cut
    one_pass = fill_to_coverage(lists, target_titles=K + 2)
    assert all(r[: K - 1] == lists[p][: K - 1] for p, r in one_pass.lists.items())
    everything = fill_to_coverage(lists, target_titles=K + 6)
    assert everything.titles_after == K + 6
    assert all({f"own{p[1:]}a", f"own{p[1:]}b"} <= set(r[:K]) for p, r in everything.lists.items())
    assert all(r[: K - 3] == lists[p][: K - 3] for p, r in everything.lists.items())
    capped = fill_to_coverage(lists, target_titles=K + 6, max_slots=1)
    # One slot each: the third profile's last title is by then shown nowhere else, so it keeps it.
    assert capped.titles_after == K + 2


def test_an_unshown_title_goes_to_one_profile_only() -> None:
    shared = [f"p{k}" for k in range(K)]
    lists = {u: [*shared, "new", f"x{u}"] for u in ("a", "b", "c")}
    result = fill_to_coverage(lists, target_titles=K + 3)
    tops = [r[:K] for r in result.lists.values()]
    assert sum("new" in top for top in tops) == 1
    assert result.titles_after == K + 3  # the others took their own next unshown title


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        fill_to_coverage({}, 1, k=0)


def test_the_protocol_floor_takes_newcomers_from_below_the_20th_and_scores_20() -> None:
    """A ranker whose top 20s hold only titles shown elsewhere runs out of newcomers there: the floor looks deeper."""
    import pandas as pd

    from training.evaluation import FLOOR_DEPTH, LISTED, served_with_floor
    from training.protocol import Split

    first, second = [f"s{k}" for k in range(K)], [f"t{k}" for k in range(K)]
    tops = {"u0": (first, second), "u1": (first, second), "u2": (second, first), "u3": (second, first)}
    ranked = {u: [*a, *b, *[f"{u}-deep{k}" for k in range(FLOOR_DEPTH - LISTED)]] for u, (a, b) in tops.items()}
    assert shown_titles(ranked) == 2 * K
    users = list(ranked)
    frame = pd.DataFrame({"user_id": users, "item_id": "s0", "ts": 0, "weight": 1.0})
    lists, record = served_with_floor(ranked, Split(train=frame, test=frame), target_titles=2 * K + 3)
    assert record["titles_after"] == 2 * K + 3 == shown_titles(lists) and record["swaps"] == 3
    assert all(len(titles) == LISTED for titles in lists.values())
    touched = [u for u in users if lists[u] != ranked[u][:LISTED]]
    assert len(touched) == 3
    assert all(lists[u][K - 1] == f"{u}-deep0" for u in touched)
