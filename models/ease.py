"""EASE (Steck 2019), plain and recency-weighted: the strongest baselines of the protocol.

Closed form ``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``. Costs O(items³)
time and O(items²) memory (12 bytes per item pair at the peak: about 0.8 GB at
8k items, 11 GB at 30k), so it is a baseline, not the model for a large
catalog: a catalog over ``MAX_ITEMS`` or one whose matrices would not fit in
the memory available raises ``CatalogTooLargeError`` before allocating anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp

from models.history import Histories
from models.scoring import ItemScorer, UserContext, sparse_user_matrix

MAX_ITEMS = 30_000
#: Peak bytes per (item, item) pair while fitting: the float64 Gram matrix inverted in place, then B in float32.
BYTES_PER_PAIR = 12

#: (data fingerprint, λ) → B. Tuning the half-life refits with the same λ on the same data;
#: this keeps those refits from paying the O(items³) inversion again. Small on purpose:
#: at most ``_B_CACHE_SIZE`` matrices and ``_B_CACHE_BYTES`` (the newest is always kept),
#: least recently used out first (first-in-first-out dropped the λ that tuning was about to reuse).
_B_CACHE: dict[tuple[str, float], npt.NDArray[np.float32]] = {}
_B_CACHE_SIZE = 6
_B_CACHE_BYTES = 2 << 30


class CatalogTooLargeError(ValueError):
    """The catalog is too large for a dense items × items model (EASE) on this machine."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_catalog_size(n_items: int) -> None:
    """Raise ``CatalogTooLargeError`` when EASE cannot fit ``n_items`` items here (before allocating anything)."""
    if n_items > MAX_ITEMS:
        raise CatalogTooLargeError(
            f"EASE needs a dense items × items matrix; {n_items:,} items is more than its limit of {MAX_ITEMS:,}"
        )
    needed = BYTES_PER_PAIR * n_items**2
    available = available_memory()
    if available is not None and needed > 0.9 * available:
        raise CatalogTooLargeError(
            f"EASE needs about {needed / 2**30:.1f} GiB for {n_items:,} items (a dense items × items inverse) "
            f"but only {available / 2**30:.1f} GiB of memory is available"
        )


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


def ease_weights(X: sp.csr_matrix, lam: float) -> npt.NDArray[np.float32]:
    """EASE's ``B`` (zero diagonal, float32) from a users × items matrix, at 12 bytes per item pair.

    ``XᵀX + λI`` is symmetric positive definite, so it is inverted in place by Cholesky
    (half the work of a general inverse, no second items² float64 copy).
    """
    n = X.shape[1]
    gram = np.empty((n, n), np.float64, order="F")
    XT = sp.csr_matrix(X.T)
    block = max(1, (16 << 20) // max(n, 1))
    for start in range(0, n, block):
        gram[:, start : start + block] = (XT @ X[:, start : start + block]).toarray()
    gram[np.diag_indices_from(gram)] += lam
    factor, info = scipy.linalg.lapack.dpotrf(gram, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"XᵀX + λI is not positive definite (potrf info {info}); raise λ")
    P, info = scipy.linalg.lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"cannot invert XᵀX + λI (potri info {info})")
    # potri fills the upper triangle; mirror it block by block (small temporaries).
    for start in range(0, n, block):
        stop = min(n, start + block)
        P[stop:, start:stop] = P[start:stop, stop:].T
        square = P[start:stop, start:stop]
        P[start:stop, start:stop] = np.triu(square) + np.triu(square, 1).T
    diag = np.diag(P).copy()
    P /= -diag
    P[np.diag_indices_from(P)] = 0.0
    # Row-major: scoring reads B by rows (sparse user rows @ B), 50x slower on a column-major copy.
    return P.astype(np.float32, order="C")


class EASE(ItemScorer):
    """EASE; with ``half_life`` each watch counts ``0.5 ** (position from the latest / half_life)`` when scoring.

    Args:
        lam: L2 regularisation λ (tuned on validation).
        half_life: None for plain EASE; a number of positions for recency-weighted EASE.
    """

    name: ClassVar[str] = "ease"
    tuning_space: ClassVar[dict[str, list[Any]]] = {"lam": [100.0, 200.0, 500.0, 1000.0]}
    similar_priority: ClassVar[int] = 30

    def __init__(self, lam: float = 200.0, half_life: float | None = None) -> None:
        super().__init__(lam=lam, half_life=half_life)
        self.lam = lam
        self.half_life = half_life
        self._B = np.zeros((0, 0), np.float32)

    @classmethod
    def check_catalog(cls, n_items: int) -> None:
        """``CatalogTooLargeError`` when the items × items matrices would not fit (see ``check_catalog_size``)."""
        check_catalog_size(n_items)

    def _fit(self, hist: Histories, **context: Any) -> None:
        check_catalog_size(hist.n_items)
        key = (_fingerprint(hist), float(self.lam))
        if key in _B_CACHE:
            self._B = _B_CACHE[key] = _B_CACHE.pop(key)  # most recently used goes last, evicted last
            return
        self._B = ease_weights(interaction_matrix(hist), self.lam)
        _B_CACHE[key] = self._B
        while len(_B_CACHE) > 1 and (
            len(_B_CACHE) > _B_CACHE_SIZE or sum(b.nbytes for b in _B_CACHE.values()) > _B_CACHE_BYTES
        ):
            _B_CACHE.pop(next(iter(_B_CACHE)))

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        # Sparse user rows: O(history × items) per user instead of a dense O(items²) product.
        U = sparse_user_matrix(users, self.history.n_items, self.half_life)
        return np.asarray(U @ self._B, np.float32)

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        return self._B[item_idx].copy()  # type: ignore[no-any-return]

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {"B": self._B}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._B = np.ascontiguousarray(arrays["B"], dtype=np.float32)


class RecencyEASE(EASE):
    """Recency-weighted EASE (half-life 3 positions by default), the baseline to beat."""

    name: ClassVar[str] = "recency_ease"
    tuning_space: ClassVar[dict[str, list[Any]]] = {"lam": [200.0, 500.0, 1000.0], "half_life": [2.0, 3.0, 5.0]}
    similar_priority: ClassVar[int] = 40

    def __init__(self, lam: float = 500.0, half_life: float | None = 3.0) -> None:
        super().__init__(lam=lam, half_life=half_life)
