"""Training data: the lake's watch events as interactions, with the facts MLflow records about them.

A registered model must say exactly which data it learnt from, so besides the
interactions themselves this module computes the dataset hash (any change to any
event changes it) and the data window (first and last event time).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import InvalidInputError, NotFoundError
from core.lake import Lake
from training.protocol import interactions_from_events

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

#: The event columns training reads; the hash covers all of them.
EVENT_COLUMNS = ["event_id", "profile_id", "title_id", "ts", "position_s", "duration_s", "rating"]
EMPTY_LAKE_HINT = (
    "fill the lake first with `marquee data generate` (synthetic) or `marquee data load FORMAT PATH` (a dataset)"
)


@dataclass(frozen=True)
class TrainingData:
    """What one training run learns from.

    Attributes:
        interactions: one row per (profile, title): ``user_id``, ``item_id``, ``ts`` (int64 s),
            ``weight`` (confidence from watch progress, completion and rating).
        titles: the lake's titles table (may be empty when only events were loaded).
        dataset_hash: ``sha256:<hex>`` over every event's id, profile, title, time, progress and rating.
        data_window: (first, last) event time, ISO 8601 UTC.
        n_events: raw watch events read.
    """

    interactions: pd.DataFrame
    titles: pd.DataFrame
    dataset_hash: str
    data_window: tuple[str, str]
    n_events: int

    def describe(self) -> dict[str, int | str]:
        """Sizes and provenance, as logged to MLflow."""
        return {
            "events": self.n_events,
            "interactions": len(self.interactions),
            "profiles": int(self.interactions["user_id"].nunique()),
            "titles": int(self.interactions["item_id"].nunique()),
            "dataset_hash": self.dataset_hash,
            "data_window_start": self.data_window[0],
            "data_window_end": self.data_window[1],
        }


def dataset_hash(events: pd.DataFrame) -> str:
    """A content hash of watch events, independent of row order and of how the lake is split in parts.

    Each row is hashed with pandas' fixed-key row hash over ``EVENT_COLUMNS``, the
    row hashes are sorted, and sha256 is taken over them: fast on millions of rows
    and stable across processes and machines.
    """
    columns = [c for c in EVENT_COLUMNS if c in events.columns]
    if events.empty:
        return "sha256:" + hashlib.sha256(b"").hexdigest()
    frame = events[columns].copy()
    if "ts" in frame.columns:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("int64")
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
    digest = hashlib.sha256(np.sort(rows).tobytes())
    digest.update(",".join(columns).encode())
    return "sha256:" + digest.hexdigest()


def data_window(events: pd.DataFrame) -> tuple[str, str]:
    """(first, last) event time as ISO 8601 UTC strings."""
    ts = pd.to_datetime(events["ts"], utc=True)
    return ts.min().isoformat(), ts.max().isoformat()


def load_events(lake: Lake) -> pd.DataFrame:
    """The lake's watch events (the columns training needs).

    Raises:
        InvalidInputError: the lake has no watch events; says how to fill it.
    """
    try:
        events = lake.read("watch_events", columns=EVENT_COLUMNS)
    except NotFoundError:
        raise InvalidInputError(f"no watch events in the lake at {lake.root}; {EMPTY_LAKE_HINT}") from None
    if events.empty:
        raise InvalidInputError(f"the lake's watch_events table at {lake.root} is empty; {EMPTY_LAKE_HINT}")
    return events


def load_training_data(lake: Lake, spark: SparkSession | None = None) -> TrainingData:
    """Step 1 of the pipeline: read events and titles, build interactions, hash and window them.

    With ``spark`` (``MARQUEE_ENGINE=spark``) the events are read and reduced to interactions in
    Spark; only the interactions (one row per profile and title) reach this process.
    """
    if spark is not None:
        return _load_with_spark(lake, spark)
    events = load_events(lake)
    interactions = interactions_from_events(events)
    titles = lake.read_or_empty("titles")
    data = TrainingData(
        interactions=interactions,
        titles=titles,
        dataset_hash=dataset_hash(events),
        data_window=data_window(events),
        n_events=len(events),
    )
    logger.info("training data %s", data.describe())
    return data


def _load_with_spark(lake: Lake, spark: SparkSession) -> TrainingData:
    from pyspark.sql import functions as sf

    from features.spark.lake import read_table
    from training import spark_frames

    if not lake.exists("watch_events"):
        raise InvalidInputError(f"no watch events in the lake at {lake.root}; {EMPTY_LAKE_HINT}")
    events = read_table(spark, lake, "watch_events", EVENT_COLUMNS).cache()
    try:
        micros = sf.unix_micros("ts")
        stats = events.agg(
            sf.count(sf.lit(1)).alias("n"), sf.min(micros).alias("first"), sf.max(micros).alias("last")
        ).first()
        if stats is None or not stats["n"]:
            raise InvalidInputError(f"the lake's watch_events table at {lake.root} is empty; {EMPTY_LAKE_HINT}")
        interactions = spark_frames.collect_interactions(spark_frames.interactions(events))
        digest = spark_frames.dataset_hash(events, EVENT_COLUMNS)
    finally:
        events.unpersist()
    window = (
        pd.Timestamp(stats["first"], unit="us", tz="UTC").isoformat(),
        pd.Timestamp(stats["last"], unit="us", tz="UTC").isoformat(),
    )
    data = TrainingData(interactions, lake.read_or_empty("titles"), digest, window, int(stats["n"]))
    logger.info("training data (spark) %s", data.describe())
    return data


def require_history(interactions: pd.DataFrame, profile_id: str) -> pd.DataFrame:
    """The interactions of one profile, oldest first.

    Raises:
        NotFoundError: the profile has no watch history, so no personal recommendation
            (or evaluation) can be made for it; says what to do instead.
    """
    mine = interactions[interactions["user_id"] == profile_id]
    if mine.empty:
        raise NotFoundError(
            f"profile {profile_id!r} has no watch history in the training data; "
            "pick a profile that has watched something, or serve it the popularity fallback"
        )
    return mine.sort_values(["ts", "item_id"], kind="mergesort").reset_index(drop=True)
