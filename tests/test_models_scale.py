"""What keeps the item-based models inside memory on a large catalog gives the same answers as the direct way."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import models.ease
import models.history
import models.sparse_io
from models.base import Interactions
from models.ease import EASE, CatalogTooLargeError, check_catalog_size, ease_weights
from models.history import Histories
from models.item_knn import cosine_neighbours
from models.scoring import UserContext, sparse_user_matrix, user_matrix
from models.sequence import transition_matrix


def random_histories(seed: int = 0, users: int = 40, items: int = 30) -> Histories:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        watched = rng.choice(items, size=int(rng.integers(1, 12)), replace=False)
        rows += [(f"u{u}", f"i{i}", 1_000 + 10 * u + step) for step, i in enumerate(watched)]
    user_ids, item_ids, ts = zip(*rows, strict=True)
    return Histories.build(
        Interactions(
            user_ids=np.array(user_ids),
            item_ids=np.array(item_ids),
            timestamps=np.array(ts, np.int64),
            weights=np.ones(len(rows), np.float32),
        )
    )


@pytest.mark.parametrize("half_life", [None, 2.0])
def test_sparse_user_rows_equal_the_dense_ones(half_life: float | None) -> None:
    contexts = [
        UserContext(user_idx=0, items=np.array([3, 1, 4], np.int64), now=0),
        UserContext(user_idx=-1, items=np.array([], np.int64), now=0),
        UserContext(user_idx=-1, items=np.array([2, 5, 2, 0], np.int64), now=0, from_history=True),  # 2 repeated
    ]
    sparse = sparse_user_matrix(contexts, 6, half_life)
    assert sparse.has_sorted_indices
    np.testing.assert_array_equal(sparse.toarray(), user_matrix(contexts, 6, half_life))


def test_block_by_block_neighbours_equal_the_full_product(monkeypatch: pytest.MonkeyPatch) -> None:
    hist = random_histories()
    X = sp.csr_matrix((np.ones(len(hist.item_idx), np.float32), hist.item_idx, hist.indptr))
    norms = np.sqrt(np.maximum(X.sum(axis=0).A.ravel(), 1.0))
    full = (X.multiply(1.0 / norms)).T @ X.multiply(1.0 / norms)
    dense = np.asarray(full.todense(), np.float32)
    np.fill_diagonal(dense, 0.0)
    whole = cosine_neighbours(hist, 5)
    monkeypatch.setattr(models.sparse_io, "BLOCK_CELLS", 2 * hist.n_items)  # two rows per block
    blocks = cosine_neighbours(hist, 5)
    assert (whole != blocks).nnz == 0
    for row in range(hist.n_items):
        kept = blocks[row].toarray().ravel()
        assert np.count_nonzero(kept) == min(5, np.count_nonzero(dense[row]))
        # every kept entry is at least as large as every dropped one
        dropped = dense[row][kept == 0]
        assert kept[kept > 0].min(initial=np.inf) >= dropped.max(initial=0.0) - 1e-7
        np.testing.assert_allclose(kept[kept > 0], dense[row][kept > 0], rtol=1e-6)
    everything = cosine_neighbours(hist, 1000)  # more neighbours than items: every co-watched item
    np.testing.assert_allclose(everything.toarray(), dense, rtol=1e-6)


def test_transitions_built_step_by_step_equal_a_direct_count() -> None:
    hist = random_histories(seed=1)
    window, decay = 3, 0.9
    expected = np.zeros((hist.n_items, hist.n_items))
    for u in range(hist.n_users):
        items = hist.item_idx[hist.user_rows(u)]
        for a in range(len(items)):
            for step in range(1, window + 1):
                if a + step < len(items):
                    expected[items[a], items[a + step]] += decay ** (step - 1)
    np.testing.assert_allclose(transition_matrix(hist, window, decay).toarray(), expected, rtol=1e-6)


def test_ease_by_cholesky_equals_the_closed_form() -> None:
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(np.float32))
    gram = (X.T @ X).toarray().astype(np.float64) + 7.0 * np.eye(30)
    P = np.linalg.inv(gram)
    expected = P / (-np.diag(P))
    np.fill_diagonal(expected, 0.0)
    B = ease_weights(X, 7.0)
    assert B.dtype == np.float32 and B.flags.c_contiguous
    np.testing.assert_allclose(B, expected, rtol=1e-5, atol=1e-7)


def test_a_catalog_too_large_for_ease_is_refused_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CatalogTooLargeError, match="more than its limit"):
        check_catalog_size(models.ease.MAX_ITEMS + 1)
    monkeypatch.setattr(models.ease, "available_memory", lambda: 1 << 30)
    with pytest.raises(CatalogTooLargeError, match=r"needs about 1\.1 GiB for 10,000 items .* only 1\.0 GiB"):
        check_catalog_size(10_000)
    check_catalog_size(1_000)  # 12 MB: fine
    monkeypatch.setattr(models.ease, "MAX_ITEMS", 2)
    three_items = Interactions(
        user_ids=np.array(["u"] * 3),
        item_ids=np.array(["a", "b", "c"]),
        timestamps=np.arange(3, dtype=np.int64),
        weights=np.ones(3, np.float32),
    )
    with pytest.raises(CatalogTooLargeError, match="3 items is more than its limit of 2"):
        EASE().fit(three_items)


def test_a_loaded_ease_scores_rows_from_a_row_major_matrix(tmp_path: Path) -> None:
    hist = random_histories(seed=3)
    interactions = Interactions(
        user_ids=hist.users.ids[np.repeat(np.arange(hist.n_users), np.diff(hist.indptr))],
        item_ids=hist.items.ids[hist.item_idx],
        timestamps=hist.ts,
        weights=hist.weight,
    )
    model = EASE(lam=5.0).fit(interactions)
    model.save(tmp_path / "ease")
    loaded = EASE.load(tmp_path / "ease")
    assert isinstance(loaded, EASE) and loaded._B.flags.c_contiguous
    user = str(hist.users.ids[0])
    np.testing.assert_array_equal(loaded.recommend(user, 5).item_ids, model.recommend(user, 5).item_ids)


def test_the_same_interactions_are_indexed_once() -> None:
    hist = random_histories(seed=4)
    interactions = Interactions(
        user_ids=hist.users.ids[hist.user_of_row()],
        item_ids=hist.items.ids[hist.item_idx],
        timestamps=hist.ts,
        weights=hist.weight,
    )
    first = Histories.build(interactions)
    assert Histories.build(interactions) is first
    with_extra = Histories.build(interactions, extra_items=["new title"])
    assert with_extra is not first and with_extra.n_items == first.n_items + 1
    copy = Interactions(interactions.user_ids, interactions.item_ids, interactions.timestamps, interactions.weights)
    assert Histories.build(copy) is not first  # another object: indexed again
    key = id(interactions)
    del interactions
    gc.collect()
    assert key not in models.history._BUILT  # forgotten with its interactions


def test_the_ease_cache_drops_the_least_recently_used_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    hist = random_histories(seed=5)
    interactions = Interactions(
        user_ids=hist.users.ids[hist.user_of_row()],
        item_ids=hist.items.ids[hist.item_idx],
        timestamps=hist.ts,
        weights=hist.weight,
    )
    monkeypatch.setattr(models.ease, "_B_CACHE", {})
    monkeypatch.setattr(models.ease, "_B_CACHE_SIZE", 2)
    inversions: list[float] = []
    real = models.ease.ease_weights

    def counted(X: sp.csr_matrix, lam: float) -> np.ndarray:
        inversions.append(lam)
        return real(X, lam)

    monkeypatch.setattr(models.ease, "ease_weights", counted)
    for lam in (1.0, 2.0, 1.0, 3.0, 1.0):  # the second 1.0 makes 2.0 the least recently used
        EASE(lam=lam).fit(interactions)
    assert inversions == [1.0, 2.0, 3.0]
