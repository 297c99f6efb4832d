"""features.ranking_frame: the ranker's input columns, identical for training and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import SchemaError
from features.ranking_frame import (
    candidate_columns,
    candidate_frame,
    candidates_from_lists,
    join_features,
    ranking_matrix,
)

SOURCES = ["als", "popularity", "lightfm"]


def test_union_of_sources_with_scores_reciprocal_ranks_and_absent_floor() -> None:
    long = candidates_from_lists({"als": (["a", "b", "c"], [0.9, 0.5, 0.1]), "popularity": (["c", "d"], [40.0, 30.0])})
    wide = candidate_frame(long, SOURCES)
    assert sorted(wide["title_id"]) == ["a", "b", "c", "d"]
    row = wide.set_index("title_id")
    # "d" was not proposed by ALS: lowest ALS score of the list, reciprocal rank 0, no hit.
    assert row.loc["d", "cand_als_score"] == pytest.approx(0.1)
    assert row.loc["d", "cand_als_rrank"] == 0.0 and row.loc["d", "cand_als_hit"] == 0.0
    assert row.loc["c", "cand_als_rrank"] == pytest.approx(1 / 3)
    assert row.loc["c", "cand_popularity_rrank"] == pytest.approx(1.0)
    assert row.loc["c", "cand_popularity_hit"] == 1.0
    # LightFM proposed nothing: its columns exist and say "absent".
    assert (wide[["cand_lightfm_score", "cand_lightfm_rrank", "cand_lightfm_hit"]].to_numpy() == 0).all()


def test_ranks_derived_from_scores_per_query_and_source() -> None:
    long = pd.DataFrame(
        {
            "query": [0, 0, 1, 1],
            "title_id": ["x", "y", "x", "y"],
            "source": ["als"] * 4,
            "score": [0.2, 0.8, 0.9, 0.1],
        }
    )
    wide = candidate_frame(long, ["als"]).set_index(["query", "title_id"])
    assert wide.loc[(0, "y"), "cand_als_rrank"] == 1.0 and wide.loc[(0, "x"), "cand_als_rrank"] == 0.5
    assert wide.loc[(1, "x"), "cand_als_rrank"] == 1.0 and wide.loc[(1, "y"), "cand_als_rrank"] == 0.5


def test_matrix_follows_the_stored_column_order_and_fills_missing_features() -> None:
    long = candidates_from_lists({"als": (["a", "b"], [2.0, 1.0])})
    frame = join_features(
        candidate_frame(long, ["als"], keys=["query"]),
        profile_features=pd.DataFrame({"query": ["request"], "watch_count": [12.0]}),
        title_features=pd.DataFrame({"title_id": ["a"], "popularity_7d": [5.0]}),
    )
    columns = ["popularity_7d", *candidate_columns(["als"]), "watch_count"]
    x = ranking_matrix(frame, columns)
    assert x.dtype == np.float32 and x.shape == (2, 5)
    by_title = dict(zip(frame["title_id"], x, strict=True))
    np.testing.assert_allclose(by_title["a"], [5.0, 2.0, 1.0, 1.0, 12.0])
    np.testing.assert_allclose(by_title["b"], [0.0, 1.0, 0.5, 1.0, 12.0])  # no feature row for "b" → 0


def test_errors_name_what_is_missing() -> None:
    long = candidates_from_lists({"als": (["a"], [1.0])})
    with pytest.raises(SchemaError, match=r"missing columns \['genre_affinity'\]"):
        ranking_matrix(candidate_frame(long, ["als"]), ["genre_affinity"])
    with pytest.raises(SchemaError, match="not among the ranker's sources"):
        candidate_frame(long, ["popularity"])
    with pytest.raises(SchemaError, match="missing"):
        candidate_frame(long.drop(columns="score"), ["als"])
