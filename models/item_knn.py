"""Item-to-item similarity (cosine item-kNN): "Because you watched X", and a fast candidate generator.

Cost: one sparse ``XᵀX`` product, computed a block of items at a time and pruned
to each item's top ``neighbours`` before the next block, so memory is
O(items × neighbours) plus one block, never the full (items × items) product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.ease import interaction_matrix
from models.history import Histories
from models.scoring import ItemScorer, UserContext, neighbour_row, sparse_user_matrix
from models.sparse_io import csr_from_arrays, csr_to_arrays, top_k_blocks


def cosine_neighbours(hist: Histories, neighbours: int) -> sp.csr_matrix:
    """Item × item cosine similarity of co-watching, pruned to each item's top ``neighbours``.

    Rows of ``XᵀX`` are computed a block of items at a time and pruned at once, so the
    full product (nearly dense on a large catalog) is never held in memory.
    """
    X = interaction_matrix(hist)
    norms = np.sqrt(np.maximum(np.asarray(X.sum(axis=0)).ravel(), 1.0))
    Xn = sp.csr_matrix(X.multiply(1.0 / norms[None, :]))
    XnT = sp.csr_matrix(Xn.T)
    return top_k_blocks(lambda start, stop: XnT[start:stop] @ Xn, hist.n_items, hist.n_items, neighbours)


class ItemKNN(ItemScorer):
    """Cosine item-kNN over recency-weighted histories.

    Args:
        neighbours: similar items kept per item.
        half_life: recency half-life in positions (None: every watch counts the same).
    """

    name: ClassVar[str] = "item_knn"
    tuning_space: ClassVar[dict[str, list[Any]]] = {"neighbours": [200, 1000], "half_life": [2.0, 3.0, 5.0]}
    similar_priority: ClassVar[int] = 10
    neighbour_matrices: ClassVar[tuple[str, ...]] = ("_sim",)

    def __init__(self, neighbours: int = 200, half_life: float | None = 3.0) -> None:
        super().__init__(neighbours=neighbours, half_life=half_life)
        self.neighbours = int(neighbours)
        self.half_life = half_life
        self._sim = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, hist: Histories, **context: Any) -> None:
        self._sim = cosine_neighbours(hist, self.neighbours)

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        if len(users) == 1:  # serving's case: one viewer per request, no sparse operand to build
            return neighbour_row(self._sim, users[0], self.half_life)[None, :]
        U = sparse_user_matrix(users, self.history.n_items, self.half_life)
        return np.asarray((U @ self._sim).todense(), np.float32)

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        sim = self._sim
        if not sim.has_canonical_format:  # duplicate entries: let scipy sum them
            return np.asarray(sim[item_idx].todense(), np.float32).ravel()
        # One stored row written into a dense one: what ``todense`` of the row gives, without the
        # scipy row object whose construction and checks cost more than the copy ("similar" per page).
        row = np.zeros(sim.shape[1], np.float32)
        start, end = sim.indptr[item_idx], sim.indptr[item_idx + 1]
        row[sim.indices[start:end]] = sim.data[start:end]
        return row

    def similar_indices(self, item_id: str, n: int = 10) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``ItemScorer.similar_indices`` read from the item's stored neighbours, without a dense row.

        The dense path writes the ~150 stored similarities into a row over the whole
        catalog and ranks every entry (~0.3 ms on 24,000 items, once per seed a page's
        "Because you watched" has not met before). Its list is the row's entries by
        (score descending, index ascending), the item itself and non-finite entries left
        out: the positive stored entries, then every zero (stored or not) in index order,
        then the negative ones. This builds that list from the stored entries, touching
        the zeros only when ``n`` reaches past the positive ones: the same indices and
        float32 scores (``tests/test_models_item_knn.py`` compares both paths).
        """
        sim = self._sim
        if not sim.has_canonical_format:  # duplicate entries: the dense row sums them
            return super().similar_indices(item_id, n)
        item_idx = self._fitted_item(item_id)
        start, end = sim.indptr[item_idx], sim.indptr[item_idx + 1]
        stored_cols = sim.indices[start:end].astype(np.int64)
        stored_values = sim.data[start:end].astype(np.float64)
        keep = (stored_cols != item_idx) & np.isfinite(stored_values)
        order = np.lexsort((stored_cols[keep], -stored_values[keep]))
        cols, values = stored_cols[keep][order], stored_values[keep][order]
        positive = int(np.count_nonzero(values > 0))
        k = min(n, sim.shape[1] - 1)
        if k <= positive:
            return cols[:k], values[:k].astype(np.float32)
        # Past the positive entries: every index whose row value is 0, in index order (not the
        # item, not a stored non-zero, not a stored NaN/inf, which the dense path leaves out).
        zeros = np.ones(sim.shape[1], bool)
        zeros[item_idx] = False
        zeros[stored_cols[stored_values != 0]] = False
        zero_idx = np.flatnonzero(zeros)[: k - positive]
        negative = values < 0
        rest = k - positive - len(zero_idx)
        chosen = np.concatenate([cols[:positive], zero_idx, cols[negative][:rest]])
        scores = np.concatenate([values[:positive], np.zeros(len(zero_idx)), values[negative][:rest]])
        return chosen, scores.astype(np.float32)

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return csr_to_arrays("sim", self._sim)

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._sim = csr_from_arrays("sim", arrays)
