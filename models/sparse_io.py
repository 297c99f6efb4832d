"""Sparse matrices as plain npz arrays (no pickle), and the row-wise top-k pruning models share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


def csr_to_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, npt.NDArray[np.generic]]:
    """``{prefix_data, prefix_indices, prefix_indptr, prefix_shape}`` for ``np.savez``."""
    m = sp.csr_matrix(matrix)
    return {
        f"{prefix}_data": m.data.astype(np.float32),
        f"{prefix}_indices": m.indices.astype(np.int64),
        f"{prefix}_indptr": m.indptr.astype(np.int64),
        f"{prefix}_shape": np.asarray(m.shape, np.int64),
    }


def csr_from_arrays(prefix: str, arrays: dict[str, npt.NDArray[np.generic]]) -> sp.csr_matrix:
    """Inverse of ``csr_to_arrays``."""
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )


def top_k_rows(matrix: sp.csr_matrix, k: int, chunk: int = 1024) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (the neighbour lists of item-kNN); diagonal dropped."""
    m = sp.csr_matrix(matrix, dtype=np.float32)
    return top_k_blocks(lambda start, stop: m[start:stop], m.shape[0], m.shape[1], k, chunk)


#: Dense cells per block of ``top_k_blocks`` (64 MB of float32): bounds memory on large catalogs.
BLOCK_CELLS = 1 << 24


def top_k_blocks(
    rows_of: Callable[[int, int], sp.spmatrix],
    n_rows: int,
    n_cols: int,
    k: int,
    chunk: int = 1024,
) -> sp.csr_matrix:
    """Top-``k`` positive entries of each row of a matrix produced a block of rows at a time; diagonal dropped.

    ``rows_of(start, stop)`` returns rows ``start:stop`` (sparse). Only one block is ever
    dense, with at most ``chunk`` rows and about ``BLOCK_CELLS`` cells.
    """
    chunk = max(1, min(chunk, BLOCK_CELLS // max(n_cols, 1)))
    rows, cols, vals = [], [], []
    for start in range(0, n_rows, chunk):
        block = sp.csr_matrix(rows_of(start, min(n_rows, start + chunk)), dtype=np.float32).toarray()
        local = np.arange(len(block))
        diagonal = local + start < n_cols
        block[local[diagonal], local[diagonal] + start] = 0.0
        if k >= n_cols:
            r, c = np.nonzero(block)
            rows.append(r + start)
            cols.append(c)
            vals.append(block[r, c])
            continue
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        v = np.take_along_axis(block, top, axis=1)
        r = np.repeat(np.arange(start, start + len(block)), k)
        keep = v.ravel() > 0
        rows.append(r[keep])
        cols.append(top.ravel()[keep])
        vals.append(v.ravel()[keep])
    if not rows:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols), dtype=np.float32
    )


def row_minmax(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scale each row to [0, 1] so blended components weigh what their weights say."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    span[span == 0] = 1.0
    return (scores - low) / span  # type: ignore[no-any-return]
