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
from functools import lru_cache
from itertools import repeat

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
        # (row of each proposed title, its score, its 1-based rank in the source's list), titles not in
        # ``title_ids`` left out; one lookup per title and numpy for the rest (no list of tuples per request)
        rows = np.fromiter(map(position.get, item_ids, repeat(-1, len(item_ids))), dtype=np.intp, count=len(item_ids))
        kept = rows >= 0
        per_source[source] = (
            rows[kept],
            np.asarray(scores, dtype=np.float32).reshape(-1)[kept],
            np.arange(1, len(rows) + 1, dtype=np.float32)[kept],
        )
    for j, (column, source, suffix) in enumerate(_parsed(tuple(columns))):
        if suffix is not None:
            if source in per_source:
                rows, values, ranks = per_source[source]
                col = matrix[:, j]
                if suffix == "score":
                    col[:] = values.min() if len(values) else 0.0
                    col[rows] = values
                elif suffix == "rrank":
                    col[rows] = 1.0 / ranks
                else:
                    col[rows] = 1.0
            continue  # a source this bundle did not run: every title "absent" (score 0, rrank 0, hit 0)
        if column in profile_features:
            matrix[:, j] = profile_features[column]
        elif column in title_columns:
            matrix[:, j] = title_columns[column]
        elif column not in _warned:
            _warned.add(column)
            logger.warning("ranker column %r has no source at serving time; it is 0", column)
    np.copyto(matrix, 0.0, where=~np.isfinite(matrix))  # nan_to_num(nan=0, ±inf=0), in place: a third of its cost
    return matrix


@lru_cache(maxsize=64)
def _parsed(columns: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """Each column as (name, candidate source, suffix), suffix ``None`` for a non-candidate column.

    A ranker's columns are the same on every request: parsed once per column list.
    """
    out: list[tuple[str, str, str | None]] = []
    for column in columns:
        if column.startswith(_CANDIDATE_PREFIX) and column.count("_") >= 2:
            source, _, suffix = column[len(_CANDIDATE_PREFIX) :].rpartition("_")
            if suffix in ("score", "rrank", "hit"):
                out.append((column, source, suffix))
                continue
        out.append((column, "", None))
    return out
