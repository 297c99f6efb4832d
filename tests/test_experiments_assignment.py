"""Deterministic assignment: the hash, layers, ramps, holdouts, forcing and targeting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from core.errors import InvalidInputError
from experiments import hashing
from experiments.assignment import (
    AssignmentContext,
    assign,
    assign_many,
    assign_one,
    global_holdouts,
)
from experiments.definitions import Experiment

NOW = datetime(2026, 12, 1, tzinfo=UTC)
IDS = np.array([f"profile-{i:06d}" for i in range(40_000)])


def make(key: str, **fields: Any) -> Experiment:
    data: dict[str, Any] = {
        "key": key,
        "layer": "ranking",
        "status": "running",
        "variants": [
            {"name": "control", "weight": 50, "payload": {"ranker": "champion"}},
            {"name": "treatment", "weight": 50, "payload": {"ranker": "challenger"}},
        ],
    }
    data.update(fields)
    return Experiment.model_validate(data)


def test_fnv1a_matches_the_published_test_vectors() -> None:
    # FNV-1a 64 reference values (Fowler/Noll/Vo test suite).
    assert hashing._fnv_update(hashing._FNV_OFFSET, b"a") == 0xAF63DC4C8601EC8C
    assert hashing._fnv_update(hashing._FNV_OFFSET, b"foobar") == 0x85944171F73967E8


def test_vectorised_and_single_hash_agree_on_every_id() -> None:
    odd = np.array(["", "a", "é", "日本語-profile", "x" * 70, "a b\tc", "42"], dtype=object)
    ids = np.concatenate([IDS[:3000], odd])
    for salt in ("layer:ranking", "exp-1", "é-salt"):
        vectorised = hashing.buckets(salt, ids)
        single = np.array([hashing.bucket(salt, str(u)) for u in ids])
        np.testing.assert_array_equal(vectorised, single)
    # A numpy str array with non-ASCII ids takes the UTF-8 path and agrees too.
    unicode_ids = np.array(["é", "日本語-profile", "plain"])
    np.testing.assert_array_equal(hashing.buckets("s", unicode_ids), [hashing.bucket("s", str(u)) for u in unicode_ids])
    # bytes input and unicode-array input hash the same as str
    ascii_ids = IDS[:100]
    np.testing.assert_array_equal(hashing.buckets("s", ascii_ids.astype("S")), hashing.buckets("s", ascii_ids))


def test_buckets_are_uniform_and_salts_are_independent() -> None:
    first = hashing.buckets("salt-one", IDS)
    second = hashing.buckets("salt-two", IDS)
    counts = np.bincount(first // 1000, minlength=10)
    assert sps.chisquare(counts).pvalue > 0.001
    assert first.min() >= 0 and first.max() < hashing.N_BUCKETS
    # Independent salts: the decile of one hash says nothing about the other.
    table = np.histogram2d(first // 2500, second // 2500, bins=4)[0]
    assert sps.chi2_contingency(table).pvalue > 0.001


def test_variant_shares_follow_the_weights() -> None:
    experiment = make(
        "weights",
        variants=[{"name": "a", "weight": 20}, {"name": "b", "weight": 30}, {"name": "c", "weight": 50}],
    )
    variants = assign_many(experiment, IDS)
    counts = [int(np.sum(variants == name)) for name in ("a", "b", "c")]
    assert sps.chisquare(counts, np.array([0.2, 0.3, 0.5]) * len(IDS)).pvalue > 0.001


def test_assign_many_equals_assign_one() -> None:
    holdout = make("hold", kind="holdout", layer="global", offset=90, allocation=10, variants=[])
    experiment = make("x", allocation=40, offset=10, forced={IDS[5]: "treatment"})
    many = assign_many(experiment, IDS[:2000], [holdout])
    single = [assign_one(experiment, str(u), [holdout]) for u in IDS[:2000]]
    assert list(many) == single
    assert many[5] == "treatment"


def test_experiments_in_one_layer_are_mutually_exclusive_and_cover_their_allocation() -> None:
    a = make("a", allocation=30)
    b = make("b", offset=30, allocation=50)
    in_a = assign_many(a, IDS) != None  # noqa: E711  (object array comparison)
    in_b = assign_many(b, IDS) != None  # noqa: E711
    assert not np.any(in_a & in_b)
    assert in_a.mean() == pytest.approx(0.30, abs=0.01)
    assert in_b.mean() == pytest.approx(0.50, abs=0.01)
    # assign() returns at most one experiment for the layer, and the right one.
    for unit in IDS[:300]:
        keys = [x.experiment_key for x in assign([a, b], AssignmentContext(str(unit)), now=NOW)]
        expected = ["a"] if assign_one(a, str(unit)) else ["b"] if assign_one(b, str(unit)) else []
        assert keys == expected


def test_layers_are_orthogonal() -> None:
    ranking = make("ranking-test", layer="ranking")
    home = make(
        "home-test",
        layer="home",
        variants=[
            {"name": "default", "weight": 50},
            {"name": "genre", "weight": 50, "payload": {"layout": "genre_first"}},
        ],
    )
    r = assign_many(ranking, IDS) == "treatment"
    h = assign_many(home, IDS) == "genre"
    table = np.array([[np.sum(r & h), np.sum(r & ~h)], [np.sum(~r & h), np.sum(~r & ~h)]])
    assert sps.chi2_contingency(table).pvalue > 0.001
    both = assign([ranking, home], AssignmentContext(str(IDS[0])), now=NOW)
    assert [x.layer for x in both] == ["home", "ranking"]


def test_ramping_up_keeps_every_assigned_unit_in_its_variant() -> None:
    small = make("ramp", allocation=10)
    large = small.model_copy(update={"allocation": 60})
    before, after = assign_many(small, IDS), assign_many(large, IDS)
    was_in = before != None  # noqa: E711
    assert np.array_equal(before[was_in], after[was_in])
    assert (after != None).mean() == pytest.approx(0.60, abs=0.01)  # noqa: E711
    # A new salt is the way to reshuffle on purpose.
    reshuffled = assign_many(large.model_copy(update={"salt": "ramp-v2"}), IDS)
    assert np.mean(reshuffled[was_in] != before[was_in]) == pytest.approx(0.5, abs=0.05)


def test_global_holdout_gets_no_experiment_and_per_layer_holdout_reserves_a_range() -> None:
    holdout = make("global-hold", kind="holdout", layer="global", offset=0, allocation=5, variants=[])
    layer_holdout = make("ranking-hold", kind="holdout", offset=90, allocation=10, variants=[])
    experiment = make("exp", allocation=90)
    definitions = [holdout, layer_holdout, experiment]
    held = held_in_layer = 0
    for unit in IDS[:4000]:
        result = assign(definitions, AssignmentContext(str(unit)), now=NOW)
        keys = [x.experiment_key for x in result]
        if assign_one(holdout, str(unit)) is not None:
            held += 1
            assert keys == ["global-hold"] and result[0].payload == {}
        elif keys == ["ranking-hold"]:
            held_in_layer += 1
            assert result[0].variant == "holdout"
        else:
            assert keys == ["exp"]
    assert held / 4000 == pytest.approx(0.05, abs=0.015)
    assert held_in_layer / 4000 == pytest.approx(0.095, abs=0.02)
    assert global_holdouts(definitions) == [holdout]


def test_forced_assignment_wins_over_hashing_targeting_and_drafts() -> None:
    unit = "qa-device-1"
    running = make("forced", allocation=0, forced={unit: "treatment"}, targeting={"countries": ["FR"]})
    result = assign([running], AssignmentContext(unit, country="US"), now=NOW)
    assert [(x.experiment_key, x.variant, x.forced) for x in result] == [("forced", "treatment", True)]
    assert result[0].payload == {"ranker": "challenger"}
    draft = make("draft-qa", status="draft", layer="home", forced={unit: "control"})
    assert [x.experiment_key for x in assign([draft], AssignmentContext(unit), now=NOW)] == ["draft-qa"]
    assert assign([draft], AssignmentContext("someone-else"), now=NOW) == []
    stopped = make("stopped-qa", status="stopped", forced={unit: "control"})
    assert assign([stopped], AssignmentContext(unit), now=NOW) == []


@pytest.mark.parametrize(
    ("targeting", "context", "eligible"),
    [
        ({"countries": ["US"]}, {"country": "us"}, True),
        ({"countries": ["US"]}, {"country": "GB"}, False),
        ({"countries": ["US"]}, {}, False),
        ({"devices": ["tv"]}, {"device": "TV"}, True),
        ({"devices": ["tv"]}, {"device": "mobile"}, False),
        ({"kids": "exclude"}, {"is_kids": True}, False),
        ({"kids": "only"}, {"is_kids": True}, True),
        ({"kids": "only"}, {"is_kids": False}, False),
        ({"profiles": "new"}, {"is_new": False}, False),
        ({"profiles": "existing"}, {"is_new": False}, True),
    ],
)
def test_targeting(targeting: dict[str, Any], context: dict[str, Any], eligible: bool) -> None:
    experiment = make("targeted", targeting=targeting)
    result = assign([experiment], AssignmentContext("unit-1", **context), now=NOW)
    assert bool(result) is eligible


def test_only_running_experiments_inside_their_dates_assign() -> None:
    experiment = make("dated", start="2026-11-01T00:00:00Z", end="2026-12-01T00:00:00Z")
    context = AssignmentContext("unit-1")
    assert assign([experiment], context, now=datetime(2026, 11, 15, tzinfo=UTC))
    assert not assign([experiment], context, now=datetime(2026, 10, 31, tzinfo=UTC))
    assert not assign([experiment], context, now=datetime(2026, 12, 1, tzinfo=UTC))  # end is exclusive
    assert not assign([experiment.model_copy(update={"status": "draft"})], context, now=NOW)


def test_account_experiments_hash_the_account_and_need_it() -> None:
    experiment = make("by-account", unit="account")
    siblings = [AssignmentContext(f"profile-{i}", account_id="account-7") for i in range(20)]
    variants = {assign([experiment], c, now=NOW)[0].variant for c in siblings}
    assert len(variants) == 1  # every profile of the account sees the same variant
    with pytest.raises(InvalidInputError, match="account_id"):
        assign([experiment], AssignmentContext("profile-1"), now=NOW)


def test_assignment_is_deterministic_across_calls() -> None:
    experiment = make("stable")
    first = assign_many(experiment, IDS[:1000])
    again = assign_many(Experiment.model_validate(experiment.model_dump()), IDS[:1000])
    assert np.array_equal(first, again)
