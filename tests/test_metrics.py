"""Metrics of the temporal-user-80-20 protocol, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from training.metrics import average_precision_at_k, coverage_at_k, ndcg_at_k, novelty_at_k, recall_at_k, summarise


def test_ndcg_uses_binary_gain_and_an_ideal_of_min_k_hits() -> None:
    # hits at ranks 1 and 3; two relevant items → ideal = 1 + 1/log2(3)
    expected = (1.0 + 1.0 / math.log2(4)) / (1.0 + 1.0 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b", "y"], {"a", "b"}, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0
    # 12 relevant, 10 hits: ideal counts only 10 slots, so a perfect top 10 scores 1.
    relevant = {str(i) for i in range(12)}
    assert ndcg_at_k([str(i) for i in range(10)], relevant, 10) == pytest.approx(1.0)
    # a hit below k does not count
    assert ndcg_at_k(["x"] * 10 + ["a"], {"a"}, 10) == 0.0


def test_recall_divides_by_min_k_and_relevant() -> None:
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 20) == pytest.approx(0.5)
    relevant = {str(i) for i in range(30)}
    assert recall_at_k([str(i) for i in range(20)], relevant, 20) == pytest.approx(1.0)
    assert recall_at_k([], {"a"}, 20) == 0.0


def test_average_precision() -> None:
    assert average_precision_at_k(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx((1 + 2 / 3) / 2)


def test_coverage_counts_distinct_items_of_all_top_k() -> None:
    assert coverage_at_k([["a", "b"], ["b", "c"]], n_items=10, k=10) == pytest.approx(0.3)
    assert coverage_at_k([["a", "b", "c"]], n_items=4, k=2) == pytest.approx(0.5)


def test_novelty_is_self_information_of_recommended_items() -> None:
    assert novelty_at_k([["a", "b"]], {"a": 4, "b": 1}, n_users=4) == pytest.approx((0 + 2) / 2)


def test_summarise_averages_over_test_users() -> None:
    ranked = {"u1": ["a", "b"], "u2": ["c", "d"]}
    relevant = {"u1": {"a"}, "u2": {"z"}}
    out = summarise(ranked, relevant, n_items=8)
    assert out["ndcg@10"] == pytest.approx(0.5)
    assert out["recall@20"] == pytest.approx(0.5)
    assert out["coverage@10"] == pytest.approx(0.5)
