"""EASE (Steck 2019), plain and recency-weighted: the strongest baselines of the protocol.

Closed form ``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``. Costs O(items³)
time and O(items²) memory (about 30 s and 0.5 GB at 8k items), so it is a
baseline, not the model for a large catalog.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.history import Histories
from models.scoring import ItemScorer, UserContext, user_matrix

MAX_ITEMS = 30_000

#: (data fingerprint, λ) → B. Tuning the half-life refits with the same λ on the same data;
#: this keeps those refits from paying the O(items³) inversion again. Small on purpose.
_B_CACHE: dict[tuple[str, float], npt.NDArray[np.float32]] = {}
_B_CACHE_SIZE = 3


def _fingerprint(hist: Histories) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for array in (hist.indptr, hist.item_idx):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(str(hist.n_items).encode())
    return digest.hexdigest()


def interaction_matrix(hist: Histories, binary: bool = True) -> sp.csr_matrix:
    """Users × items CSR of the fit-time histories (1.0, or the confidence weight)."""
    values = np.ones(len(hist.item_idx), np.float32) if binary else hist.weight
    return sp.csr_matrix((values, hist.item_idx, hist.indptr), shape=(hist.n_users, hist.n_items))


class EASE(ItemScorer):
    """EASE; with ``half_life`` each watch counts ``0.5 ** (position from the latest / half_life)`` when scoring.

    Args:
        lam: L2 regularisation λ (tuned on validation).
        half_life: None for plain EASE; a number of positions for recency-weighted EASE.
    """

    name: ClassVar[str] = "ease"

    def __init__(self, lam: float = 200.0, half_life: float | None = None) -> None:
        super().__init__(lam=lam, half_life=half_life)
        self.lam = lam
        self.half_life = half_life
        self._B = np.zeros((0, 0), np.float32)

    def _fit(self, hist: Histories, **context: Any) -> None:
        if hist.n_items > MAX_ITEMS:
            raise ValueError(f"EASE needs a dense items² matrix; {hist.n_items} items is more than {MAX_ITEMS}")
        key = (_fingerprint(hist), float(self.lam))
        if key in _B_CACHE:
            self._B = _B_CACHE[key]
            return
        X = interaction_matrix(hist)
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = np.linalg.inv(G)
        B = P / (-np.diag(P))
        B[np.diag_indices_from(B)] = 0.0
        self._B = B.astype(np.float32)
        if len(_B_CACHE) >= _B_CACHE_SIZE:
            _B_CACHE.pop(next(iter(_B_CACHE)))
        _B_CACHE[key] = self._B

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        return user_matrix(users, self.history.n_items, self.half_life) @ self._B  # type: ignore[no-any-return]

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        return self._B[item_idx].copy()  # type: ignore[no-any-return]

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {"B": self._B}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._B = arrays["B"].astype(np.float32)


class RecencyEASE(EASE):
    """Recency-weighted EASE (half-life 3 positions by default), the baseline to beat."""

    name: ClassVar[str] = "recency_ease"

    def __init__(self, lam: float = 500.0, half_life: float | None = 3.0) -> None:
        super().__init__(lam=lam, half_life=half_life)
