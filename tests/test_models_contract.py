"""One contract suite for every registered candidate generator (after implicit's test layout).

The data is a "checkerboard": two groups of users, each watching only its own
group of titles, so the right answer is known — every personalised model must
put the unseen titles of the user's own group first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.base import CandidateGenerator, Interactions
from models.ids import EmptyHistoryError, UnknownItemError, UnknownUserError
from models.registry import model_class, model_names

ITEMS_PER_GROUP = 6
USERS_PER_GROUP = 30
SEEN = 3

#: Tiny, fast settings per model (few epochs); models not listed use their defaults.
FAST: dict[str, dict[str, Any]] = {
    "als": {"factors": 2, "iterations": 20, "regularization": 0.1},  # the checkerboard has rank 2
    "lightfm": {"no_components": 4, "epochs": 10},
    "sasrec": {"epochs": 30, "max_len": 8, "dims": 16, "blocks": 1, "batch_size": 16, "learning_rate": 0.01},
    "ease": {"lam": 10.0},
    "recency_ease": {"lam": 10.0},
    "mllib_als": {"factors": 2, "iterations": 20, "regularization": 0.01},
}
#: Models with no personalisation: they cannot know the checkerboard's answer.
UNPERSONALISED = {"popularity", "trending", "time_popularity"}


def generator_names() -> list[str]:
    return [n for n in model_names() if issubclass(model_class(n), CandidateGenerator)]


def item_id(group: int, k: int) -> str:
    return f"t{group}{k}"


def checkerboard(seed: int = 0) -> tuple[Interactions, dict[str, set[str]]]:
    """Two groups; each user watched SEEN titles of their own group, in time order."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    seen: dict[str, set[str]] = {}
    clock = 1_600_000_000
    for group in (0, 1):
        for u in range(USERS_PER_GROUP):
            user = f"u{group}{u}"
            order = rng.permutation(ITEMS_PER_GROUP)[:SEEN]
            seen[user] = set()
            for k in order:
                clock += 60
                users.append(user)
                items.append(item_id(group, int(k)))
                ts.append(clock)
                seen[user].add(item_id(group, int(k)))
    n = len(users)
    data = Interactions(
        user_ids=np.array(users),
        item_ids=np.array(items),
        timestamps=np.array(ts, np.int64),
        weights=np.ones(n, np.float32),
    )
    return data, seen


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest) -> tuple[Interactions, dict[str, set[str]]]:
    if "mllib_als" in generator_names():
        request.getfixturevalue("spark")  # MLlib fits on the suite's one local Spark session
    return checkerboard()


_fitted: dict[str, CandidateGenerator] = {}


def fitted(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> CandidateGenerator:
    if name not in _fitted:
        _fitted[name] = model_class(name)(**FAST.get(name, {})).fit(world[0])  # type: ignore[assignment]
    return _fitted[name]


@pytest.mark.parametrize("name", [n for n in generator_names() if n not in UNPERSONALISED])
def test_checkerboard_known_answer(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    model = fitted(name, world)
    for user, seen in world[1].items():
        group = user[1]
        expected = {item_id(int(group), k) for k in range(ITEMS_PER_GROUP)} - seen
        top = model.recommend(user, n=len(expected)).item_ids.tolist()
        assert set(top) == expected, f"{name}: {user} got {top}, expected its own group's unseen {sorted(expected)}"


@pytest.mark.parametrize("name", generator_names())
def test_seen_items_are_filtered(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    model = fitted(name, world)
    for user, seen in world[1].items():
        rec = model.recommend(user, n=5)
        assert not seen & set(rec.item_ids.tolist())
        assert np.all(np.diff(rec.scores) <= 1e-6), "scores must be in descending order"
    unfiltered = model.recommend("u00", n=2 * ITEMS_PER_GROUP, filter_seen=False)
    assert world[1]["u00"] <= set(unfiltered.item_ids.tolist())


@pytest.mark.parametrize("name", generator_names())
def test_batch_equals_single(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    model = fitted(name, world)
    users = sorted(world[1])
    batch = model.recommend_batch(users, n=4)
    for user, rec in zip(users, batch, strict=True):
        single = model.recommend(user, n=4)
        assert rec.item_ids.tolist() == single.item_ids.tolist()
        np.testing.assert_allclose(rec.scores, single.scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", generator_names())
def test_save_load_round_trip(name: str, world: tuple[Interactions, dict[str, set[str]]], tmp_path: Path) -> None:
    model = fitted(name, world)
    model.save(tmp_path / name)
    loaded = model_class(name).load(tmp_path / name)
    assert isinstance(loaded, CandidateGenerator)
    for user in sorted(world[1]):
        a, b = model.recommend(user, n=5), loaded.recommend(user, n=5)
        assert a.item_ids.tolist() == b.item_ids.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)
    assert not list((tmp_path / name).glob("*.pkl")), "models save without pickle"


@pytest.mark.parametrize("name", generator_names())
def test_n_larger_than_catalog_returns_every_unseen_item(
    name: str, world: tuple[Interactions, dict[str, set[str]]]
) -> None:
    model = fitted(name, world)
    rec = model.recommend("u11", n=1000)
    catalog = {item_id(g, k) for g in (0, 1) for k in range(ITEMS_PER_GROUP)}
    assert sorted(rec.item_ids.tolist()) == sorted(catalog - world[1]["u11"])


@pytest.mark.parametrize("name", generator_names())
def test_unknown_user_raises_a_key_error_unless_history_is_given(
    name: str, world: tuple[Interactions, dict[str, set[str]]]
) -> None:
    model = fitted(name, world)
    with pytest.raises(UnknownUserError, match="not seen"):
        model.recommend("nobody", n=3)
    assert issubclass(UnknownUserError, KeyError), "serving catches KeyError to fall back to popularity"
    history = [item_id(1, 0), item_id(1, 1)]
    rec = model.recommend("nobody", n=3, history=history)
    assert len(rec.item_ids) == 3
    assert not set(history) & set(rec.item_ids.tolist())


@pytest.mark.parametrize("name", generator_names())
def test_a_new_profile_with_no_known_history(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    model = fitted(name, world)
    if name in UNPERSONALISED:
        assert len(model.recommend("nobody", n=3, history=[]).item_ids) == 3
        return
    for history in ([], ["title-not-in-the-catalog"]):
        with pytest.raises(EmptyHistoryError, match="no history"):
            model.recommend("nobody", n=3, history=history)


@pytest.mark.parametrize("name", [n for n in generator_names() if n not in UNPERSONALISED])
def test_history_override_counts_new_watches(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    """A group-0 user who now watches group-1 titles gets group-1 titles, without refit."""
    model = fitted(name, world)
    new_history = [item_id(1, k) for k in range(SEEN)]
    rec = model.recommend("u00", n=ITEMS_PER_GROUP - SEEN, history=new_history)
    assert set(rec.item_ids.tolist()) == {item_id(1, k) for k in range(SEEN, ITEMS_PER_GROUP)}


@pytest.mark.parametrize("name", generator_names())
def test_similar_items(name: str, world: tuple[Interactions, dict[str, set[str]]]) -> None:
    model = fitted(name, world)
    rec = model.similar_items(item_id(0, 0), n=3)
    assert item_id(0, 0) not in rec.item_ids.tolist()
    assert len(rec.item_ids) == 3
    if name not in UNPERSONALISED:
        assert all(i.startswith("t0") for i in rec.item_ids.tolist()), rec.item_ids
    with pytest.raises(UnknownItemError):
        model.similar_items("no-such-title")


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*seqknn"):
        model_class("nope")


@pytest.mark.parametrize("name", generator_names())
def test_fit_on_empty_data_says_what_is_wrong(name: str) -> None:
    empty = Interactions(
        user_ids=np.array([], np.str_),
        item_ids=np.array([], np.str_),
        timestamps=np.array([], np.int64),
        weights=np.array([], np.float32),
    )
    with pytest.raises(ValueError, match="zero interactions"):
        model_class(name)(**FAST.get(name, {})).fit(empty)
