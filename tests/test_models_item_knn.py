"""Item-kNN's "similar" from its stored neighbours equals the dense row's list (``ItemScorer.similar_indices``)."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Interactions
from models.ids import UnknownItemError
from models.item_knn import ItemKNN
from models.scoring import ItemScorer


def _interactions(seed: int, users: int = 300, items: int = 400, per_user: int = 12) -> Interactions:
    rng = np.random.default_rng(seed)
    # Popularity skew, so some items have many neighbours and some very few.
    popularity = rng.zipf(1.6, items).astype(float)
    p = popularity / popularity.sum()
    rows = [(u, i) for u in range(users) for i in rng.choice(items, per_user, replace=False, p=p)]
    return Interactions(
        user_ids=np.array([f"u{u}" for u, _ in rows]),
        item_ids=np.array([f"i{i}" for _, i in rows]),
        timestamps=np.arange(len(rows), dtype=np.int64) + 1_600_000_000,
        weights=np.ones(len(rows), np.float32),
    )


def _dense(model: ItemKNN, item: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    return ItemScorer.similar_indices(model, item, n)


@pytest.fixture(scope="module")
def model() -> ItemKNN:
    return ItemKNN(neighbours=20).fit(_interactions(0))  # type: ignore[return-value]


@pytest.mark.parametrize("n", [1, 5, 19, 20, 21, 60, 150, 500])
def test_sparse_similar_equals_the_dense_row(model: ItemKNN, n: int) -> None:
    """Same indices, same float32 scores, same order: ties at 0 in index order past the stored neighbours."""
    compared = 0
    for item in model.history.items.ids.tolist():
        sparse_idx, sparse_scores = model.similar_indices(item, n)
        dense_idx, dense_scores = _dense(model, item, n)
        np.testing.assert_array_equal(sparse_idx, dense_idx)
        np.testing.assert_array_equal(sparse_scores, dense_scores)
        assert sparse_scores.dtype == np.float32
        compared += 1
    assert compared == len(model.history.items)


def test_sparse_similar_keeps_the_dense_order_with_zero_negative_and_nan_entries(model: ItemKNN) -> None:
    """Stored zeros rank with the implicit zeros, negatives after them, NaN and inf nowhere."""
    original = model._sim
    try:
        sim = original.copy()
        row = next(r for r in range(sim.shape[0]) if sim.indptr[r + 1] - sim.indptr[r] >= 5)
        start = sim.indptr[row]
        stored = sim.indices[start : start + 5].tolist()
        sim.data[start : start + 5] = [0.0, -0.25, np.nan, np.inf, -0.5]  # a stored zero stays stored
        model._sim = sim
        assert sim.has_canonical_format
        item = model.history.items.ids[row]
        size = sim.shape[1]
        for n in (2, 10, size - 3, size - 1, 10 * size):
            sparse_idx, sparse_scores = model.similar_indices(item, n)
            dense_idx, dense_scores = _dense(model, item, n)
            np.testing.assert_array_equal(sparse_idx, dense_idx)
            np.testing.assert_array_equal(sparse_scores, dense_scores)
            assert stored[2] not in sparse_idx.tolist() and stored[3] not in sparse_idx.tolist()
        assert sparse_idx.tolist()[-2:] == [stored[1], stored[4]]  # the negatives come last, best first
    finally:
        model._sim = original


def test_sparse_similar_of_an_unknown_item_raises(model: ItemKNN) -> None:
    with pytest.raises(UnknownItemError):
        model.similar_indices("never-seen", 10)


def test_similar_items_follow_the_sparse_path(model: ItemKNN) -> None:
    """``similar_items`` (the pair path) gives the ids of ``similar_indices``."""
    item = model.history.items.ids[0]
    rec = model.similar_items(item, 30)
    idx, scores = model.similar_indices(item, 30)
    assert rec.item_ids.tolist() == model.history.items.to_ids(idx).tolist()
    np.testing.assert_array_equal(rec.scores, scores)


def test_equal_neighbour_matrices_are_shared_and_their_row_computed_once() -> None:
    """item-kNN and seqknn fitted alike hold one matrix after loading; scores are unchanged by sharing."""
    from models.scoring import UserContext, share_equal_matrices
    from models.sequence import SequenceKNN

    data = _interactions(1)
    knn = ItemKNN(neighbours=20, half_life=3.0).fit(data)
    seq = SequenceKNN(neighbours=20, knn_half_life=3.0).fit(data)
    other = ItemKNN(neighbours=5).fit(data)  # different neighbours: not shared
    assert knn._sim is not seq._sim
    assert share_equal_matrices([knn, seq, other]) == 1
    assert seq._sim is knn._sim and other._sim is not knn._sim

    rng = np.random.default_rng(2)
    for _ in range(20):
        items = rng.choice(len(knn.history.items), 8, replace=False).astype(np.int64)
        alone = [m._score([UserContext(-1, items, 0, True)])[0] for m in (knn, seq, other)]
        shared: dict[object, np.ndarray] = {}
        together = [m._score([UserContext(-1, items, 0, True, shared)])[0] for m in (knn, seq, other)]
        assert len(shared) == 2  # knn and seqknn read one row; the other model's matrix has its own
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(a, b)
