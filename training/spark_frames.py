"""The Spark engine's training frames: interactions, the protocol's split and point-in-time features.

Each function computes in Spark what its pandas twin computes
(:func:`training.protocol.interactions_from_events`,
:func:`training.protocol.temporal_user_split`,
:func:`training.ranker_data.point_in_time_features`) and hands the result back as
the same pandas frames, so the models and the metrics after them do not change
(``tests/test_spark_engine.py`` compares both engines row by row).

The point-in-time join is Spark SQL, not Feast's Spark offline store: the pandas
engine does not ask Feast either (Feast's retrieval of a few hundred thousand rows
would take most of the training budget; ``tests/test_training_features_feast.py``
checks the in-memory join equals Feast's), and Feast's Spark store would need a
second set of feature views over ``SparkSource`` tables beside the repo's file sources.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import InvalidInputError
from core.rules import COMPLETED_SHARE
from training.protocol import COLUMNS, MIN_INTERACTIONS, TEST_FRACTION, Split
from training.ranker_data import AFFINITY_TABLE, GENRE_MATCH, PROFILE_TABLES, TITLE_TABLES, TS, table_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)


def interactions(events: DataFrame) -> DataFrame:
    """Lake ``watch_events`` → one row per (profile, title) with its confidence weight (as the pandas engine)."""
    from pyspark.sql import functions as sf

    progress = sf.when(
        sf.col("duration_s") > 0,
        sf.least(
            sf.greatest(sf.col("position_s") / sf.greatest(sf.col("duration_s"), sf.lit(1.0)), sf.lit(0.0)), sf.lit(1.0)
        ),
    ).otherwise(1.0)
    rows = events.select(
        sf.col("profile_id").cast("string").alias("user_id"),
        sf.col("title_id").cast("string").alias("item_id"),
        sf.floor(sf.unix_micros("ts") / 1_000_000).cast("long").alias("ts"),
        progress.cast("float").alias("progress"),
        sf.col("rating").cast("float").alias("rating"),
        sf.monotonically_increasing_id().alias("_row"),
    )
    grouped = rows.groupBy("user_id", "item_id").agg(
        sf.max("ts").alias("ts"),
        sf.max("progress").alias("progress"),
        # pandas' groupby "last": the last non-null rating in the lake's order.
        sf.max_by("rating", sf.when(sf.col("rating").isNotNull(), sf.col("_row"))).alias("rating"),
    )
    # Progress is float32 in the pandas engine, and so is its comparison with the completed share.
    weight = (
        1.0
        + 2.0 * sf.col("progress")
        + 2.0 * (sf.col("progress") >= sf.lit(COMPLETED_SHARE).cast("float")).cast("float")
    )
    # Ratings are on different scales per dataset; only the share of the top rating matters.
    top_row = grouped.agg(sf.max("rating").alias("top")).first()
    top = float(top_row["top"]) if top_row is not None and top_row["top"] is not None else None
    if top is None:
        return grouped.select("user_id", "item_id", "ts", weight.cast("float").alias("weight"))
    rated = sf.col("rating").isNotNull() & ~sf.isnan("rating") & sf.lit(top > 0)
    scaled = sf.when(rated, weight * (0.5 + sf.col("rating") / max(top, 1e-6))).otherwise(weight)
    return grouped.select("user_id", "item_id", "ts", scaled.cast("float").alias("weight"))


def dataset_hash(events: DataFrame, columns: list[str]) -> str:
    """A content hash of the events, independent of row order and parts: sha256 over sorted row hashes.

    Spark's row hash (xxhash64) is not pandas', so the value differs from the pandas
    engine's for the same events; the prefix says which it is.
    """
    from pyspark.sql import functions as sf

    hashed = events.select(sf.xxhash64(*[sf.col(c) for c in columns]).alias("h")).orderBy("h").toArrow()
    digest = hashlib.sha256(hashed.column("h").to_numpy().astype(np.int64).tobytes())
    digest.update(",".join(columns).encode())
    return "sha256-xxhash64:" + digest.hexdigest()


def _item_order(frame: DataFrame) -> DataFrame:
    """Add ``_order``: numeric when every item id is one prefix + a number, else the ids' text rank."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    items = frame.select("item_id").distinct()
    parsed = items.select(
        "item_id",
        sf.regexp_extract("item_id", r"^(\D*)(\d+)$", 1).alias("_prefix"),
        sf.regexp_extract("item_id", r"^(\D*)(\d+)$", 2).alias("_number"),
    )
    summary = parsed.agg(
        sf.sum((sf.col("_number") == "").cast("int")).alias("unparsed"), sf.countDistinct("_prefix").alias("prefixes")
    ).first()
    numeric = summary is not None and summary["unparsed"] == 0 and summary["prefixes"] <= 1
    if numeric:
        order = parsed.select("item_id", sf.col("_number").cast("long").alias("_order"))
    else:
        # Distinct items are few (a catalog): one partition ranks them.
        order = items.select("item_id", sf.dense_rank().over(Window.orderBy("item_id")).cast("long").alias("_order"))
    return frame.join(sf.broadcast(order), "item_id")


def temporal_user_split(
    frame: DataFrame,
    *,
    test_fraction: float = TEST_FRACTION,
    min_interactions: int = MIN_INTERACTIONS,
    drop_short_users: bool = True,
) -> Split:
    """The protocol's split (see :func:`training.protocol.temporal_user_split`), computed in Spark.

    Args:
        frame: interactions (``user_id``, ``item_id``, ``ts`` int64 seconds, ``weight``).

    Returns:
        The same ``Split`` of pandas frames, in the pandas engine's row order.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    if not 0.0 < test_fraction < 1.0:
        raise InvalidInputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    ordered = _item_order(frame)
    latest = Window.partitionBy("user_id", "item_id").orderBy(sf.col("ts").desc(), sf.col("_order").desc())
    data = ordered.withColumn("_latest", sf.row_number().over(latest)).where(sf.col("_latest") == 1).drop("_latest")
    per_user = Window.partitionBy("user_id")
    data = data.withColumn("_n", sf.count(sf.lit(1)).over(per_user))
    if data.where(sf.col("_n") >= min_interactions).limit(1).count() == 0:
        raise InvalidInputError(
            f"no user has {min_interactions} or more interactions; the protocol needs longer histories"
        )
    if drop_short_users:
        data = data.where(sf.col("_n") >= min_interactions)
    rank = sf.row_number().over(per_user.orderBy("ts", "_order")) - 1
    n_test = sf.ceil(sf.lit(test_fraction) * sf.col("_n") - sf.lit(1e-9))
    data = data.withColumn("_test", (sf.col("_n") >= min_interactions) & (rank >= sf.col("_n") - n_test)).cache()
    try:
        train = data.where(~sf.col("_test"))
        train_items = train.select("item_id").distinct()
        test = data.where(sf.col("_test")).join(sf.broadcast(train_items), "item_id", "left_semi")
        columns = [sf.col(c) for c in COLUMNS]
        train_frame = _collect(train.orderBy("user_id", "ts", "_order").select(*columns))
        test_frame = _collect(test.orderBy("user_id", "ts", "_order").select(*columns))
    finally:
        data.unpersist()
    if train_frame.empty and test_frame.empty:
        raise InvalidInputError("no interactions to split: the dataset is empty")
    if test_frame.empty:
        raise InvalidInputError("no held-out interaction has an item seen in training; the data is too small")
    split = Split(train=train_frame, test=test_frame)
    logger.info("split (spark) %s", split.describe())
    return split


def collect_interactions(frame: DataFrame) -> pd.DataFrame:
    """Interactions from Spark as the pandas engine's frame (same dtypes), sorted by user, time and item."""
    return _collect(frame.orderBy("user_id", "ts", "item_id"))


def _collect(frame: DataFrame) -> pd.DataFrame:
    """A protocol frame from Spark, with the pandas engine's dtypes."""
    out = frame.toArrow().to_pandas()
    return pd.DataFrame(
        {
            "user_id": out["user_id"].astype(object).to_numpy(),
            "item_id": out["item_id"].astype(object).to_numpy(),
            "ts": out["ts"].to_numpy(np.int64),
            "weight": out["weight"].to_numpy(np.float32),
        }
    )


def as_of_join(spark: SparkSession, rows: pd.DataFrame, table: pd.DataFrame, key: str, columns: list[str]) -> DataFrame:
    """Spark: for each (``key``, ``event_timestamp``) row the table's last row of that key at or before it.

    Returns a Spark frame with ``key``, ``event_timestamp`` and ``columns`` (null where none).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    left = spark.createDataFrame(rows[[key, TS]].astype({key: str}))
    right = spark.createDataFrame(table[[key, TS, *columns]].astype({key: str}))
    # A table row sorts before a query at the same time: "at or before" includes equal stamps. Each
    # query carries forward the last table row's values as one struct (null only for query rows, so
    # null feature values inside it are kept, not skipped).
    values = sf.struct(*[sf.col(c) for c in columns])
    union = left.select(key, TS, sf.lit(None).cast(values_type(right, columns)).alias("_v")).unionByName(
        right.select(key, TS, values.alias("_v"))
    )
    union = union.withColumn("_kind", sf.when(sf.col("_v").isNull(), 1).otherwise(0))
    running = Window.partitionBy(key).orderBy(TS, "_kind").rowsBetween(Window.unboundedPreceding, 0)
    filled = union.withColumn("_last", sf.last("_v", ignorenulls=True).over(running))
    return filled.where(sf.col("_kind") == 1).select(key, TS, *[sf.col("_last")[c].alias(c) for c in columns])


def values_type(frame: DataFrame, columns: list[str]) -> str:
    """The Spark SQL type of a struct of ``columns`` of ``frame``."""
    fields = ", ".join(f"`{c}`: {frame.schema[c].dataType.simpleString()}" for c in columns)
    return f"struct<{fields}>"


def point_in_time_features(
    spark: SparkSession, entity: pd.DataFrame, tables: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The ``ranker_v1`` features per (``profile_id``, ``title_id``, ``event_timestamp``) row, joined in Spark.

    The same values as :func:`training.ranker_data.point_in_time_features`. ``genre_match`` is the
    pandas engine's function (:func:`training.ranker_data.genre_match`): it joins the affinity once
    per distinct (profile, cutoff) — one row per validation profile — and sums a sparse product per row.
    """
    from training.ranker_data import genre_match

    features: dict[str, np.ndarray] = {}
    stamp = pd.to_datetime(entity[TS], utc=True)
    for key, names in (("profile_id", PROFILE_TABLES), ("title_id", TITLE_TABLES)):
        distinct = pd.DataFrame({key: entity[key].astype(str).to_numpy(), TS: stamp.to_numpy()}).drop_duplicates()
        index = pd.MultiIndex.from_arrays([entity[key].astype(str).to_numpy(), stamp.to_numpy()])
        for name, cols in table_columns(tables, names, key).items():
            joined = as_of_join(spark, distinct, tables[name], key, cols).toArrow().to_pandas()
            joined[TS] = pd.to_datetime(joined[TS], utc=True)
            aligned = joined.set_index([key, TS]).reindex(index)
            features.update({c: aligned[c].to_numpy(np.float64) for c in cols})
    if AFFINITY_TABLE in tables and "title_metadata" in tables:
        features[GENRE_MATCH] = genre_match(
            entity["profile_id"].to_numpy(), entity["title_id"].to_numpy(), entity[TS], tables
        )
    return pd.DataFrame(features, index=entity.index)
