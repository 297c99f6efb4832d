"""Implicit ALS (Hu, Koren, Volinsky 2008) with confidence from watch progress and completion.

The interaction weight (``training.protocol.interactions_from_events``: more for a
finished title, more for a high rating) is the confidence ``1 + alpha * weight``.
A history passed at recommendation time is folded in with one least-squares
step against the fixed item factors, so new watches count without refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.history import Histories
from models.scoring import ItemScorer, UserContext, column_major


class ImplicitALS(ItemScorer):
    """Matrix factorisation by alternating least squares (``implicit``'s CPU solver).

    Args:
        factors: latent dimensions.
        regularization: L2 weight.
        alpha: confidence scale of the interaction weights.
        iterations: ALS sweeps.
        seed: random seed of the factor initialisation.
    """

    name: ClassVar[str] = "als"
    tuning_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64],
        "regularization": [0.01, 0.1],
        "alpha": [1.0, 10.0],
    }
    similar_priority: ClassVar[int] = 50

    def __init__(
        self, factors: int = 32, regularization: float = 0.1, alpha: float = 1.0, iterations: int = 15, seed: int = 0
    ) -> None:
        super().__init__(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations, seed=seed)
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self._users = np.zeros((0, 0), np.float32)
        self._items = np.zeros((0, 0), np.float32)
        self._gram_cache: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None

    def _fit(self, hist: Histories, **context: Any) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        user_items = sp.csr_matrix((hist.weight, hist.item_idx, hist.indptr), shape=(hist.n_users, hist.n_items))
        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=1,
        )
        model.fit(user_items, show_progress=False)
        self._users = np.asarray(model.user_factors, np.float32)
        self._items = column_major(model.item_factors)
        self._gram_cache = None

    def _fold_in(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """User factors for a history: argmin Σ c (p - u·y)² + λ|u|² with c = 1 + alpha on watched items."""
        Y, A = self._gram()
        if len(items):
            Yh = Y[items]
            A = A + self.alpha * Yh.T @ Yh
            b = (1.0 + self.alpha) * Yh.sum(axis=0)
        else:
            b = np.zeros(Y.shape[1])
        return np.linalg.solve(A, b).astype(np.float32)

    def _gram(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(Y as float64, YᵀY + λI), computed once per fitted model.

        Recomputing YᵀY on every fold-in cost ~4 ms per request at 10k items × 64
        factors (serving benchmark); cached, a fold-in costs O(|history|·f² + f³).
        """
        if self._gram_cache is None:
            Y = np.ascontiguousarray(self._items, dtype=np.float64)  # rows gathered per fold-in
            self._gram_cache = (Y, Y.T @ Y + self.regularization * np.eye(Y.shape[1]))
        return self._gram_cache

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        U = np.vstack(
            [
                self._users[ctx.user_idx] if ctx.user_idx >= 0 and not ctx.from_history else self._fold_in(ctx.items)
                for ctx in users
            ]
        )
        return U @ self._items.T  # type: ignore[no-any-return]

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        norms = np.linalg.norm(self._items, axis=1) + 1e-9
        return (self._items @ self._items[item_idx]) / (norms * norms[item_idx])  # type: ignore[no-any-return]

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {"user_factors": self._users, "item_factors": self._items}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._users = arrays["user_factors"].astype(np.float32)
        self._items = column_major(arrays["item_factors"])
        self._gram_cache = None
