"""The ranker's input matrix for one request, without pandas.

``features.ranking_frame`` defines the ranker's columns for training and serving:
per candidate source ``s``, ``cand_<s>_score`` (raw score; absent → the lowest
score of that source's list), ``cand_<s>_rrank`` (1/rank; absent → 0) and
``cand_<s>_hit`` (1/0), then numeric profile and title features (missing → 0).
Its pandas path costs several milliseconds per request, more than the whole
serving budget, so this module builds the same matrix for one profile with
dicts and numpy. ``tests/test_serving_pipeline.py`` checks that both give the
same matrix on the same candidate lists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

_CANDIDATE_PREFIX = "cand_"
_warned: set[str] = set()


def ranking_matrix(
    columns: Sequence[str],
    title_ids: Sequence[str],
    lists: Mapping[str, tuple[Sequence[str], Sequence[float]]],
    profile_features: Mapping[str, float],
    title_columns: Mapping[str, npt.NDArray[np.float32]],
) -> npt.NDArray[np.float32]:
    """Rows of ranker features, one per candidate title.

    Args:
        columns: the ranker's columns, in training order (bundle metadata ``ranker_columns``).
        title_ids: the candidates (the union of all lists), shape (n,).
        lists: source → (title ids best first, scores), as the generators returned them.
        profile_features: the profile's numeric online features, name → value.
        title_columns: title feature name → values for ``title_ids``, shape (n,) (NaN when unknown).

    Returns:
        shape (n, len(columns)) float32, NaN and infinities replaced by 0.

    A column with no source here (a feature the online store did not return) is
    0, as ``ranking_frame``'s left join makes it, and is logged once: ranking on
    with one feature missing beats falling back to popularity for everyone.
    """
    n = len(title_ids)
    matrix = np.zeros((n, len(columns)), dtype=np.float32)
    position = {t: i for i, t in enumerate(title_ids)}
    per_source: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.float32], npt.NDArray[np.float32]]] = {}
    for source, (item_ids, scores) in lists.items():
        # (row of each proposed title, its score, its 1-based rank in the source's list)
        kept = [(position[t], s, r) for r, (t, s) in enumerate(zip(item_ids, scores, strict=True), 1) if t in position]
        per_source[source] = (
            np.array([k[0] for k in kept], dtype=np.intp),
            np.array([k[1] for k in kept], dtype=np.float32),
            np.array([k[2] for k in kept], dtype=np.float32),
        )
    for j, column in enumerate(columns):
        if column.startswith(_CANDIDATE_PREFIX) and column.count("_") >= 2:
            source, _, suffix = column[len(_CANDIDATE_PREFIX) :].rpartition("_")
            if source in per_source and suffix in ("score", "rrank", "hit"):
                rows, values, ranks = per_source[source]
                col = matrix[:, j]
                if suffix == "score":
                    col[:] = values.min() if len(values) else 0.0
                    col[rows] = values
                elif suffix == "rrank":
                    col[rows] = 1.0 / ranks
                else:
                    col[rows] = 1.0
                continue
            if suffix in ("score", "rrank", "hit"):
                continue  # a source this bundle did not run: every title "absent" (score 0, rrank 0, hit 0)
        if column in profile_features:
            matrix[:, j] = profile_features[column]
        elif column in title_columns:
            matrix[:, j] = title_columns[column]
        elif column not in _warned:
            _warned.add(column)
            logger.warning("ranker column %r has no source at serving time; it is 0", column)
    return np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
