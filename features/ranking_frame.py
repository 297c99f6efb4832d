"""Ranker input matrices from candidate lists and features — one code path for training and serving.

The neural ranker scores (profile, candidate title) rows described by a fixed,
ordered list of numeric columns. Training builds them for many profiles at once
from point-in-time features; serving builds them for one profile from online
features. Both call the functions here, and the column list a ranker was trained
with is stored in the model bundle's metadata (``ranker_columns``), so serving
rebuilds exactly the same columns in exactly the same order.

Columns are of two kinds:

* candidate columns, three per candidate source ``s`` (``als``, ``lightfm``,
  ``popularity``...): ``cand_<s>_score`` (the source's raw score; a title the
  source did not propose gets the lowest score of that source's list, so
  "absent" ranks below every proposed title), ``cand_<s>_rrank`` (1 / rank,
  0 when absent) and ``cand_<s>_hit`` (1 when proposed, else 0);
* feature columns: numeric profile features (joined on the query key) and title
  features (joined on ``title_id``), named as the feature service returns them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import InvalidInputError, SchemaError

#: The per-source candidate columns, in this order for each source.
CANDIDATE_SUFFIXES = ("score", "rrank", "hit")
TITLE_KEY = "title_id"


def candidate_columns(sources: Sequence[str]) -> list[str]:
    """The candidate columns of ``sources``, in the order the ranker sees them."""
    return [f"cand_{source}_{suffix}" for source in sources for suffix in CANDIDATE_SUFFIXES]


def candidate_frame(candidates: pd.DataFrame, sources: Sequence[str], keys: Sequence[str] = ("query",)) -> pd.DataFrame:
    """Long candidate lists → one row per (query, title) with the candidate columns of every source.

    Args:
        candidates: one row per proposed title, columns ``keys`` + ``title_id``, ``source``,
            ``score`` (higher is better) and optionally ``rank`` (1-based; derived from
            ``score`` within each query and source when absent).
        sources: every source the ranker knows, in column order; a source with no rows
            still gets its columns (all "absent"), so the matrix shape never depends on the data.
        keys: the columns that identify one query (e.g. ``profile_id`` at serving,
            a query number during training).

    Returns:
        The union of all sources' titles per query (``keys`` + ``title_id`` + candidate
        columns), sorted by ``keys`` then by best reciprocal rank, for determinism.

    Raises:
        SchemaError: a required column is missing or a source is not in ``sources``.
    """
    keys = list(keys)
    needed = [*keys, TITLE_KEY, "source", "score"]
    missing = [c for c in needed if c not in candidates.columns]
    if missing:
        raise SchemaError(f"candidate lists need columns {needed}; missing {missing}")
    unknown = sorted(set(candidates["source"].unique()) - set(sources))
    if unknown:
        raise SchemaError(f"candidate sources {unknown} are not among the ranker's sources {list(sources)}")
    long = candidates[[*keys, TITLE_KEY, "source", "score", *(["rank"] if "rank" in candidates.columns else [])]]
    long = long.copy()
    long["score"] = long["score"].astype(np.float32)
    if "rank" not in long.columns:
        long["rank"] = long.groupby([*keys, "source"], sort=False)["score"].rank(method="first", ascending=False)
    long["rrank"] = (1.0 / long["rank"].astype(np.float32)).astype(np.float32)
    out = long[[*keys, TITLE_KEY]].drop_duplicates().reset_index(drop=True)
    for source in sources:
        mine = long[long["source"] == source]
        per_title = mine.groupby([*keys, TITLE_KEY], sort=False).agg(score=("score", "max"), rrank=("rrank", "max"))
        lowest = mine.groupby(keys, sort=False)["score"].min().rename("lowest")
        joined = out.merge(per_title.reset_index(), on=[*keys, TITLE_KEY], how="left").merge(
            lowest.reset_index(), on=keys, how="left"
        )
        proposed = joined["rrank"].notna().to_numpy()
        score = np.where(proposed, joined["score"].to_numpy(np.float64), joined["lowest"].to_numpy(np.float64))
        out[f"cand_{source}_score"] = np.nan_to_num(score).astype(np.float32)
        out[f"cand_{source}_rrank"] = np.nan_to_num(joined["rrank"].to_numpy(np.float64)).astype(np.float32)
        out[f"cand_{source}_hit"] = proposed.astype(np.float32)
    best = out[[f"cand_{s}_rrank" for s in sources]].max(axis=1)
    out = out.assign(_best=best).sort_values([*keys, "_best", TITLE_KEY], ascending=[True] * len(keys) + [False, True])
    return out.drop(columns="_best").reset_index(drop=True)


def numeric_feature_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """The numeric (or boolean) columns of a feature frame, sorted by name, minus ``exclude``."""
    return sorted(
        c
        for c in frame.columns
        if c not in set(exclude) and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    )


def join_features(
    frame: pd.DataFrame,
    profile_features: pd.DataFrame | None = None,
    title_features: pd.DataFrame | None = None,
    keys: Sequence[str] = ("query",),
) -> pd.DataFrame:
    """Left-join profile features (on ``keys``) and title features (on ``title_id``) onto candidate rows.

    Missing features stay NaN here; ``ranking_matrix`` turns them into 0, so a title
    without a row in the feature store (a new release) is still ranked.
    """
    out = frame
    if profile_features is not None and len(profile_features.columns):
        overlap = (set(profile_features.columns) - set(keys)) & set(out.columns)
        if overlap:
            raise SchemaError(f"profile feature columns {sorted(overlap)} clash with candidate columns; rename them")
        out = out.merge(profile_features, on=list(keys), how="left")
    if title_features is not None and len(title_features.columns):
        overlap = (set(title_features.columns) - {TITLE_KEY}) & set(out.columns)
        if overlap:
            raise SchemaError(f"title feature columns {sorted(overlap)} clash with other columns; rename them")
        out = out.merge(title_features, on=TITLE_KEY, how="left")
    return out


def ranking_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> npt.NDArray[np.float32]:
    """The ranker's input: ``frame[columns]`` as float32, shape (n, len(columns)), NaN → 0.

    Raises:
        SchemaError: a column the ranker was trained with is absent (the feature service
            and the bundle disagree); the message lists the missing columns.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"ranker input is missing columns {missing}; the feature service must return the features "
            "the ranker was trained with (see ranker_columns in the bundle metadata)"
        )
    values = frame[list(columns)].to_numpy(dtype=np.float32, na_value=np.nan)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def candidates_from_lists(
    lists: Mapping[str, tuple[Sequence[str], Sequence[float]]], query: str = "request"
) -> pd.DataFrame:
    """One request's candidate lists (source → (title ids, scores), best first) → the long frame.

    The serving-side entry point: build the frame for one profile, then
    ``candidate_frame`` → ``join_features`` → ``ranking_matrix`` with the bundle's columns.
    """
    rows: list[pd.DataFrame] = []
    for source, (item_ids, scores) in lists.items():
        if len(item_ids) != len(scores):
            raise InvalidInputError(f"source {source!r}: {len(item_ids)} titles but {len(scores)} scores")
        rows.append(
            pd.DataFrame(
                {
                    "query": query,
                    TITLE_KEY: np.asarray(item_ids, dtype=object),
                    "source": source,
                    "score": np.asarray(scores, dtype=np.float32),
                    "rank": np.arange(1, len(item_ids) + 1, dtype=np.float32),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["query", TITLE_KEY, "source", "score", "rank"])
    return pd.concat(rows, ignore_index=True)
