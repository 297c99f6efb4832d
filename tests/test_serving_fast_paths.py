"""Serving's one-viewer fast paths give the answers of the general paths they replace.

Each request scores one viewer, so serving takes shortcuts the batch code does
not: sparse rows summed without scipy operands, seqknn's viewer-independent time
scores reused, the loaded ranker run in numpy, visibility as flags per title. A
shortcut may only change the cost: these tests compare each one with the path it
replaces, bitwise where the arithmetic is the same and to float32 precision where
the library differs (torch vs numpy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import test_serving_world as world

from core.rules import may_see
from models.base import Interactions
from models.item_knn import ItemKNN
from models.ranker import NeuralRanker
from models.scoring import UserContext, sparse_user_matrix, user_weights, weighted_rows
from models.sequence import SequenceKNN
from serving.catalog import TitleCatalog


def _random_csr(rng: np.random.Generator, n: int = 300, density: float = 0.05) -> sp.csr_matrix:
    matrix = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    matrix.sort_indices()
    return matrix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_rows_equal_the_sparse_product_bitwise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = _random_csr(rng)
    ctx = UserContext(-1, rng.integers(0, 300, size=40).astype(np.int64), 0, True)  # repeats included
    for half_life in (None, 3.0):
        want = np.asarray((sparse_user_matrix([ctx], 300, half_life) @ matrix).todense(), np.float32)[0]
        got = weighted_rows(matrix, *user_weights(ctx, half_life))
        np.testing.assert_array_equal(got, want)


def test_weighted_rows_sum_repeated_and_unsorted_rows_like_a_coo_row() -> None:
    rng = np.random.default_rng(3)
    matrix = _random_csr(rng)
    rows = np.array([7, 3, 7, 250, 3], np.int64)
    weights = np.array([0.5, 1.0, 0.25, 2.0, 0.125], np.float32)
    vote = sp.csr_matrix((weights, (np.zeros(5, np.int64), rows)), shape=(1, 300), dtype=np.float32)
    want = np.asarray((vote @ matrix).todense(), np.float32)[0]
    np.testing.assert_array_equal(weighted_rows(matrix, rows, weights), want)
    assert not weighted_rows(matrix, np.zeros(0, np.int64), np.zeros(0, np.float32)).any()


def _interactions(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(0, 120, n)
    items = (users % 7) * 10 + rng.integers(0, 25, n)  # clusters, so neighbours mean something
    return Interactions(
        user_ids=np.array([f"u{u}" for u in users]),
        item_ids=np.array([f"i{i}" for i in items]),
        timestamps=(1_700_000_000 + rng.integers(0, 90 * 86_400, n)).astype(np.int64),
        weights=np.ones(n, np.float32),
    )


@pytest.mark.parametrize("model", [ItemKNN(neighbours=30), SequenceKNN(neighbours=30)], ids=["item_knn", "seqknn"])
def test_one_viewer_scores_equal_the_batch_scores_bitwise(model: ItemKNN | SequenceKNN) -> None:
    model.fit(_interactions())
    rng = np.random.default_rng(5)
    now = int(model.history.ts.max())
    for _ in range(20):
        ctx = UserContext(-1, rng.integers(0, model.history.n_items, size=12).astype(np.int64), now, True)
        other = UserContext(-1, rng.integers(0, model.history.n_items, size=3).astype(np.int64), now, True)
        one = model._score([ctx])[0]
        batch = model._score([ctx, other])[0]  # two viewers: the general sparse path
        np.testing.assert_array_equal(one, batch)


def test_seqknn_forgets_its_time_scores_when_refitted() -> None:
    model = SequenceKNN(neighbours=30, time_weight=1.0).fit(_interactions(0))
    ctx = UserContext(-1, np.array([1, 2, 3], np.int64), int(model.history.ts.max()), True)
    model._score([ctx])
    assert model._time_rows
    model.fit(_interactions(1))
    assert not model._time_rows
    ctx = UserContext(-1, np.array([1, 2, 3], np.int64), int(model.history.ts.max()), True)
    np.testing.assert_array_equal(model._score([ctx])[0], model._score([ctx, ctx])[0])


def test_a_loaded_ranker_scores_in_numpy_as_torch_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32) * 3 + 10
    groups = np.repeat(np.arange(40), 10).astype(np.int64)
    labels = (rng.random(400) < 0.1).astype(np.float32)
    fitted = NeuralRanker(hidden=(16, 8), epochs=2, dropout=0.1, seed=1).fit(x, groups, labels, list("abcde"))
    fitted.save(tmp_path / "r")
    loaded = NeuralRanker.load(tmp_path / "r")
    assert loaded._dense_layers() is not None  # the fast path is taken
    rows = rng.normal(size=(300, 5)).astype(np.float32) * 3 + 10
    rows[0, 1] = np.nan  # standardised NaN → 0 on both paths
    fast = loaded.score(rows)
    frozen, loaded._frozen = loaded._frozen, None
    reference = loaded.score(rows)  # torch
    loaded._frozen = frozen
    assert fast.dtype == np.float32 and fast.shape == (300,)
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.argsort(-fast, kind="stable")[:50], np.argsort(-reference, kind="stable")[:50])
    assert fitted._dense_layers() is None  # a ranker being fitted stays on torch


def test_visible_flags_are_the_one_rule_per_title() -> None:
    catalog = TitleCatalog.from_frame(
        world.titles_frame(),
        pd.DataFrame({"episode_id": ["s1-e1", "orphan-e1"], "series_id": ["a1", "nowhere"], "duration_s": [60, 60]}),
    )
    unknown = len(catalog)
    index = catalog.played_index()
    assert index["s1-e1"] == index["a1"] and "orphan-e1" not in index
    for level in range(4):
        for country in (None, "US", "DE", "FR"):
            flags = catalog.visible_flags(level, country)
            assert len(flags) == unknown + 1 and flags[unknown] is False
            for i, title_id in enumerate(catalog.title_ids):
                rule = may_see(int(catalog.maturity[i]), catalog.countries[i], level, country)
                assert flags[i] == rule == catalog.allowed(title_id, level, country)


def test_serving_options_read_the_environment_once_with_clear_errors() -> None:
    from serving.options import ServingOptions

    assert ServingOptions.from_environ({}) == ServingOptions()
    options = ServingOptions.from_environ(
        {"MARQUEE_SERVING_WORKERS": "3", "MARQUEE_SERVING_MEMO_S": "0", "MARQUEE_SERVING_ONLINE_FEATURES": "no"}
    )
    assert (options.workers, options.memo_s, options.online_features) == (3, 0.0, False)
    with pytest.raises(ValueError, match="MARQUEE_SERVING_TIMEOUT_S='soon' is not a float"):
        ServingOptions.from_environ({"MARQUEE_SERVING_TIMEOUT_S": "soon"})
