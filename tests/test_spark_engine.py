"""The Spark engine computes what the pandas engine computes: feature tables, interactions, split, as-of joins.

Both engines run on ml-latest-small (real data) and are compared row by row, after
sorting, with a tolerance for floats (sums are added in another order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared_data

from core.lake import Lake
from features.pipelines import FEATURE_TABLES, PipelineOptions, compute_feature_tables

pytestmark = pytest.mark.slow

EVENT_COLUMNS = ["profile_id", "title_id", "ts", "position_s", "duration_s"]


@pytest.fixture(scope="module")
def movielens_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from features.ingest.movielens import load_movielens

    lake = Lake(tmp_path_factory.mktemp("ml-small") / "lake")
    load_movielens(require_shared_data("ml-latest-small"), lake)
    return lake


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame, keys: Sequence[str], name: str) -> None:
    """Equal columns, and row by row after sorting by ``keys``: exact for ids, counts, times and
    strings, ``rtol=1e-5`` for floats (NaN equals NaN), element by element for lists."""
    assert list(left.columns) == list(right.columns), f"{name}: columns differ"
    assert len(left) == len(right), f"{name}: {len(left)} rows with pandas, {len(right)} with Spark"
    a = left.sort_values(list(keys), kind="stable").reset_index(drop=True)
    b = right.sort_values(list(keys), kind="stable").reset_index(drop=True)
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_float_dtype(x.dtype):
            close = np.isclose(x.to_numpy(np.float64), y.to_numpy(np.float64), rtol=1e-5, atol=1e-6, equal_nan=True)
            assert close.all(), f"{name}.{column}: {int((~close).sum())} rows differ, first {a.loc[~close].head(3)}"
        elif pd.api.types.is_integer_dtype(x.dtype) or pd.api.types.is_datetime64_any_dtype(x.dtype):
            assert x.dtype == y.dtype, f"{name}.{column}: {x.dtype} vs {y.dtype}"
            assert (x.to_numpy() == y.to_numpy()).all(), f"{name}.{column} differs"
        else:
            for i, (p, q) in enumerate(zip(x, y, strict=True)):
                p_list = [] if p is None else list(p) if not isinstance(p, str) else p
                q_list = [] if q is None else list(q) if not isinstance(q, str) else q
                if isinstance(p_list, list) and p_list and not isinstance(p_list[0], str):
                    assert np.allclose(p_list, q_list, rtol=1e-5), f"{name}.{column} row {i}: {p_list} vs {q_list}"
                else:
                    assert p_list == q_list, f"{name}.{column} row {i}: {p_list!r} vs {q_list!r}"


def test_every_feature_table_is_the_same_with_both_engines(spark, movielens_lake: Lake) -> None:  # type: ignore[no-untyped-def]
    from features.spark.build import compute_feature_tables_spark
    from features.spark.lake import read_table

    lake = movielens_lake
    expected = compute_feature_tables(
        lake.read("watch_events", EVENT_COLUMNS), lake.read("titles"), lake.read_or_empty("episodes")
    )
    got = compute_feature_tables_spark(
        read_table(spark, lake, "watch_events", EVENT_COLUMNS),
        read_table(spark, lake, "titles"),
        None,
        None,
        PipelineOptions(),
    )
    assert got.plays == expected.plays == 100_836
    assert got.as_of == expected.as_of
    for name in FEATURE_TABLES:
        key = "profile_id" if name.startswith("profile") else "title_id"
        assert_same_rows(expected.tables[name], got.tables[name], [key, "event_timestamp"], name)


def test_interactions_and_the_protocol_split_are_the_same(spark, movielens_lake: Lake) -> None:  # type: ignore[no-untyped-def]
    from features.spark.lake import read_table
    from training import spark_frames
    from training.data import EVENT_COLUMNS as TRAINING_COLUMNS
    from training.protocol import interactions_from_events, temporal_user_split, validation_split

    events = movielens_lake.read("watch_events", TRAINING_COLUMNS)
    expected = interactions_from_events(events)
    frame = spark_frames.interactions(read_table(spark, movielens_lake, "watch_events", TRAINING_COLUMNS)).cache()
    got = spark_frames.collect_interactions(frame)
    assert_same_rows(expected, got, ["user_id", "item_id"], "interactions")

    split = spark_frames.temporal_user_split(frame)
    reference = temporal_user_split(expected)
    # Same rows in the same order (the models see the pandas engine's order).
    pd.testing.assert_frame_equal(split.train, reference.train)
    pd.testing.assert_frame_equal(split.test, reference.test)
    validation = spark_frames.temporal_user_split(spark.createDataFrame(split.train), drop_short_users=False)
    pd.testing.assert_frame_equal(validation.test, validation_split(reference.train).test)
    frame.unpersist()


def test_point_in_time_join_is_the_same(spark, movielens_lake: Lake) -> None:  # type: ignore[no-untyped-def]
    from training import spark_frames
    from training.ranker_data import point_in_time_features

    lake = movielens_lake
    tables = compute_feature_tables(lake.read("watch_events", EVENT_COLUMNS), lake.read("titles")).tables
    rng = np.random.default_rng(7)
    profiles = tables["profile_activity"]["profile_id"].unique()
    titles = tables["title_popularity"]["title_id"].unique()
    seconds = rng.integers(
        int(pd.Timestamp("1996-01-01").timestamp()), int(pd.Timestamp("2019-01-01").timestamp()), 3000
    )
    entity = pd.DataFrame(
        {
            "profile_id": rng.choice(profiles, 3000),
            # Exact snapshot times too: "at or before" must include them.
            "title_id": rng.choice(titles, 3000),
            "event_timestamp": pd.to_datetime(seconds, unit="s", utc=True),
        }
    )
    snapshot = tables["profile_activity"].iloc[:50]
    entity.loc[:49, "profile_id"] = snapshot["profile_id"].to_numpy()
    entity.loc[:49, "event_timestamp"] = snapshot["event_timestamp"].to_numpy()
    expected = point_in_time_features(entity, tables)
    got = spark_frames.point_in_time_features(spark, entity, tables)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-6, check_dtype=False)
    assert expected["plays_total"].notna().sum() > 100  # the join found rows, not only NaN
