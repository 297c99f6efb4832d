"""Watch events → play steps in Spark (the rules of :mod:`features.pipelines.plays`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.pipelines.plays import COMPLETION_THRESHOLD

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Microseconds per second (Spark timestamps are microsecond instants).
US = 1_000_000


def plays_from_events(events: DataFrame, episodes: DataFrame | None, session_gap_s: int) -> DataFrame:
    """One step per report: ``profile_id``, ``title_id`` (catalog title), ``item_id``, ``s`` (int64 seconds),
    ``us`` (int64 microseconds), ``play``, ``minutes`` (double) and ``completed`` (0/1).

    Reports of one (profile, item) more than ``session_gap_s`` apart start a new play; a
    report's ``minutes`` is how far the play's furthest position advanced, ``completed`` is 1
    on the report that first reached the completion share.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    rows = events.select(
        sf.col("profile_id").cast("string").alias("profile_id"),
        sf.col("title_id").cast("string").alias("item_id"),
        sf.unix_micros(sf.col("ts")).alias("us"),
        sf.col("position_s").cast("double").alias("position_s"),
        sf.col("duration_s").cast("double").alias("duration_s"),
        # Ties in time keep the lake's row order, as the pandas engine's stable sort does.
        sf.monotonically_increasing_id().alias("_row"),
    )
    pair = Window.partitionBy("profile_id", "item_id").orderBy("us", "_row")
    previous_us = sf.lag("us").over(pair)
    rows = rows.withColumn(
        "_new", (previous_us.isNull() | ((sf.col("us") - previous_us) > session_gap_s * US)).cast("int")
    )
    rows = rows.withColumn("_play_no", sf.sum("_new").over(pair.rowsBetween(Window.unboundedPreceding, 0)))
    play = Window.partitionBy("profile_id", "item_id", "_play_no").orderBy("us", "_row")
    rows = rows.withColumn("_furthest", sf.max("position_s").over(play.rowsBetween(Window.unboundedPreceding, 0)))
    rows = rows.withColumn("_previous", sf.coalesce(sf.lag("_furthest").over(play), sf.lit(0.0)))
    done = (sf.col("duration_s") > 0) & (sf.col("_furthest") >= sf.lit(COMPLETION_THRESHOLD) * sf.col("duration_s"))
    rows = rows.withColumn("_done", done)
    rows = rows.withColumn("_was_done", sf.coalesce(sf.lag("_done").over(play), sf.lit(False)))
    steps = rows.select(
        "profile_id",
        "item_id",
        "us",
        sf.floor(sf.col("us") / US).cast("long").alias("s"),
        sf.col("_new").cast("long").alias("play"),
        ((sf.col("_furthest") - sf.col("_previous")) / 60.0).alias("minutes"),
        (sf.col("_done") & ~sf.col("_was_done")).cast("long").alias("completed"),
        "_row",
    )
    if episodes is None:
        return steps.withColumn("title_id", sf.col("item_id"))
    series = episodes.select(
        sf.col("episode_id").cast("string").alias("item_id"), sf.col("series_id").cast("string").alias("_series")
    )
    return steps.join(sf.broadcast(series), "item_id", "left").select(
        *steps.columns, sf.coalesce(sf.col("_series"), sf.col("item_id")).alias("title_id")
    )
