"""Training lists for the neural ranker: each positive with negatives sampled from its own query.

Kept apart from ``models.ranker`` because it is plain numpy and easy to test alone:
the ranker's loss only compares rows of the same query, so every list must hold
one positive and ``n_negatives`` negatives of that same query.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def build_lists(
    groups: npt.NDArray[np.integer],
    positive: npt.NDArray[np.bool_],
    n_negatives: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Row indices of training lists, one list per positive row.

    Negatives are drawn uniformly with replacement from the negatives of the
    positive's query, so queries with few negatives still give full lists.
    Queries without a positive or without a negative give no list.

    Args:
        groups: shape (n,), the query id of each row.
        positive: shape (n,) bool, whether each row is a positive.
        n_negatives: negatives per list.
        rng: the seeded generator that draws the negatives.

    Returns:
        shape (m, 1 + n_negatives) int64; column 0 is the positive row, the rest negatives.
    """
    groups = np.asarray(groups)
    positive = np.asarray(positive, dtype=bool)
    if len(groups) != len(positive):
        raise ValueError("groups and positive must have the same length")
    if len(groups) == 0:
        return np.zeros((0, 1 + n_negatives), np.int64)
    _, query = np.unique(groups, return_inverse=True)
    n_queries = int(query.max()) + 1
    neg_rows = np.flatnonzero(~positive)
    # Negatives sorted by query: each query's negatives are one contiguous slice.
    neg_rows = neg_rows[np.argsort(query[neg_rows], kind="stable")]
    neg_count = np.bincount(query[neg_rows], minlength=n_queries)
    neg_start = np.concatenate([[0], np.cumsum(neg_count)[:-1]])
    pos_rows = np.flatnonzero(positive)
    pos_rows = pos_rows[neg_count[query[pos_rows]] > 0]
    if len(pos_rows) == 0:
        return np.zeros((0, 1 + n_negatives), np.int64)
    q = query[pos_rows]
    draws = rng.random((len(pos_rows), n_negatives))
    offsets = np.floor(draws * neg_count[q][:, None]).astype(np.int64)
    negatives = neg_rows[neg_start[q][:, None] + offsets]
    return np.concatenate([pos_rows[:, None], negatives], axis=1).astype(np.int64)
