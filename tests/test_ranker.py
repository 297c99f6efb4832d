"""The neural ranker: learns a known signal, is reproducible, round-trips without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.ranker import NeuralRanker
from models.ranker_lists import build_lists

NAMES = ["signal", "noise_a", "noise_b"]


def _queries(n_queries: int = 200, per_query: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query has one positive whose ``signal`` column is higher than its negatives' (plus noise columns)."""
    rng = np.random.default_rng(seed)
    n = n_queries * per_query
    groups = np.repeat(np.arange(n_queries), per_query).astype(np.int64)
    labels = np.zeros(n, np.float32)
    labels[::per_query] = 1.0
    x = rng.normal(size=(n, 3)).astype(np.float32) * np.array([1.0, 5.0, 5.0], np.float32)
    x[:, 0] += 2.5 * labels + 100.0  # large offset: the ranker must standardise
    return x, groups, labels


def _hit_rate(ranker: NeuralRanker, x: np.ndarray, groups: np.ndarray, labels: np.ndarray) -> float:
    scores = ranker.score(x)
    hits = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        hits.append(labels[rows[np.argmax(scores[rows])]] > 0)
    return float(np.mean(hits))


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_ranker_learns_the_signal_column(loss: str) -> None:
    x, groups, labels = _queries()
    ranker = NeuralRanker(hidden=(16,), loss=loss, epochs=5, batch_size=32, seed=1).fit(x, groups, labels, NAMES)  # type: ignore[arg-type]
    tx, tg, tl = _queries(seed=7)
    # A random scorer puts the positive first 10% of the time; the signal alone gives ~90%.
    assert _hit_rate(ranker, tx, tg, tl) > 0.7
    assert ranker.history[-1] < ranker.history[0]


def test_same_seed_same_scores_and_save_load_round_trip(tmp_path: Path) -> None:
    x, groups, labels = _queries(n_queries=50)
    a = NeuralRanker(hidden=(8,), epochs=2, seed=3).fit(x, groups, labels, NAMES)
    b = NeuralRanker(hidden=(8,), epochs=2, seed=3).fit(x, groups, labels, NAMES)
    np.testing.assert_array_equal(a.score(x), b.score(x))
    a.save(tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["ranker.json", "weights.npz"]
    loaded = NeuralRanker.load(tmp_path / "r")
    assert loaded.feature_names == NAMES
    # A loaded ranker scores in numpy (serving's fast path), a fitted one in torch: equal to float32 precision.
    np.testing.assert_allclose(loaded.score(x), a.score(x), rtol=1e-5, atol=1e-6)
    assert loaded.score(x).dtype == np.float32


def test_clear_errors() -> None:
    x, groups, labels = _queries(n_queries=5)
    with pytest.raises(RuntimeError, match="not fitted"):
        NeuralRanker().score(x)
    with pytest.raises(ValueError, match="feature names"):
        NeuralRanker().fit(x, groups, labels, ["only_one"])
    with pytest.raises(ValueError, match="no query has both"):
        NeuralRanker().fit(x, groups, np.zeros_like(labels), NAMES)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuralRanker().fit(bad, groups, labels, NAMES)
    ranker = NeuralRanker(epochs=1).fit(x, groups, labels, NAMES)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        ranker.score(x[:, :2])
    with pytest.raises(ValueError, match="loss must be"):
        NeuralRanker(loss="hinge")  # type: ignore[arg-type]


def test_lists_pair_each_positive_with_negatives_of_its_own_query() -> None:
    groups = np.array([5, 5, 5, 9, 9, 7, 7, 5])
    positive = np.array([True, False, False, True, False, True, True, False])
    lists = build_lists(groups, positive, 4, np.random.default_rng(0))
    # Query 7 has no negative, so only the positives of queries 5 and 9 make lists.
    assert sorted(lists[:, 0].tolist()) == [0, 3]
    for row in lists:
        assert positive[row[0]] and not positive[row[1:]].any()
        assert (groups[row] == groups[row[0]]).all()
    assert lists.shape == (2, 5)
