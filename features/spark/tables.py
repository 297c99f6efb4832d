"""The four feature tables in Spark, column for column those of :mod:`features.pipelines.profile` and ``title``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from features.pipelines.profile import BINGE_GAP
from features.pipelines.title import METADATA_TIMESTAMP
from features.pipelines.windows import DAY_S, WINDOWS_DAYS
from features.spark.windows import as_of_sums, snapshot_times

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: Windows of the counted features, in seconds.
WINDOWS_S = tuple(w * DAY_S for w in WINDOWS_DAYS)
#: Largest exponent of the genre-affinity weights (as the pandas engine clips them).
MAX_EXPONENT = 700.0


def _ratio(numerator: Column, denominator: Column) -> Column:
    """``numerator / denominator`` as float; null (NaN once collected) where the denominator is 0."""
    from pyspark.sql import functions as sf

    return sf.when(denominator > 0, numerator / denominator).cast("float")


def _count(column: str) -> Column:
    from pyspark.sql import functions as sf

    return sf.round(sf.col(column)).cast("long")


def title_genres(titles: DataFrame) -> DataFrame:
    """``title_id`` → ``genres`` (array of str, empty when unknown)."""
    from pyspark.sql import functions as sf

    return titles.select(
        sf.col("title_id").cast("string").alias("title_id"),
        sf.coalesce(sf.col("genres"), sf.array().cast("array<string>")).alias("genres"),
    )


def _genre_plays(plays: DataFrame, genres: DataFrame) -> DataFrame:
    """One row per (play step, genre of its catalog title), minutes split equally over the genres."""
    from pyspark.sql import functions as sf

    joined = plays.join(sf.broadcast(genres), "title_id", "inner").where(sf.size("genres") > 0)
    return joined.select(
        "profile_id",
        "s",
        sf.explode("genres").alias("genre"),
        (sf.col("minutes") / sf.size("genres")).alias("split_minutes"),
    )


def profile_activity(plays: DataFrame, genres: DataFrame, as_of_s: int) -> DataFrame:
    """The ``profile_activity`` table (see :func:`features.pipelines.profile.profile_activity`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    # The previous play *start* of the same (profile, title): the last start among the earlier rows.
    pair = Window.partitionBy("profile_id", "title_id").orderBy("s", "us", "_row")
    previous = sf.last(sf.when(sf.col("play") == 1, sf.col("s")), ignorenulls=True).over(
        pair.rowsBetween(Window.unboundedPreceding, -1)
    )
    within = (sf.col("play") == 1) & previous.isNotNull() & (sf.col("s") - previous <= BINGE_GAP.total_seconds())
    steps = plays.select(
        "profile_id",
        "s",
        sf.col("play").cast("double").alias("play"),
        "minutes",
        sf.col("completed").cast("double").alias("completed"),
        within.cast("double").alias("binge"),
        sf.lit(0.0).alias("genre_first"),
        sf.lit(1).alias("seen"),
    )
    first_seen = (
        _genre_plays(plays, genres)
        .groupBy("profile_id", "genre")
        .agg(sf.min("s").alias("s"))
        .select(
            "profile_id",
            "s",
            *[sf.lit(0.0).alias(c) for c in ("play", "minutes", "completed", "binge")],
            sf.lit(1.0).alias("genre_first"),
            sf.lit(0).alias("seen"),
        )
    )
    events = steps.unionByName(first_seen)
    queries = snapshot_times(plays.select("profile_id", "s"), ["profile_id"], as_of_s)
    windows = [*WINDOWS_S, None]
    sums = as_of_sums(
        events,
        queries,
        ["profile_id"],
        {"play": windows, "minutes": WINDOWS_S, "completed": windows, "binge": [None], "genre_first": [None]},
        last="seen",
    )
    columns: list[Column] = [sf.col("profile_id"), sf.timestamp_seconds("T").alias("event_timestamp")]
    columns += [_count(f"play__{w}d").alias(f"plays_{w}d") for w in WINDOWS_DAYS]
    columns += [sf.col(f"minutes__{w}d").cast("float").alias(f"watch_minutes_{w}d") for w in WINDOWS_DAYS]
    columns += [_count(f"completed__{w}d").alias(f"completed_{w}d") for w in WINDOWS_DAYS]
    total = _count("play__total")
    columns += [
        total.alias("plays_total"),
        ((sf.col("T") - sf.col("last_s")) / DAY_S).cast("float").alias("days_since_last_watch"),
        _ratio(sf.col("completed__total"), total).alias("completion_rate"),
        _ratio(sf.col("binge__total"), total).alias("binge_ratio"),
        _count("genre_first__total").alias("distinct_genres"),
    ]
    return sums.select(*columns)


def genre_affinity(plays: DataFrame, genres: DataFrame, as_of_s: int, half_life_days: float, top_n: int) -> DataFrame:
    """The ``profile_genre_affinity`` table (see :func:`features.pipelines.profile.genre_affinity`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    tau = half_life_days * DAY_S / math.log(2.0)
    first = Window.partitionBy("profile_id")
    anchored = plays.withColumn("_first", sf.min("s").over(first))
    with_first = anchored.join(sf.broadcast(genres), "title_id", "inner").where(sf.size("genres") > 0)
    weighted = with_first.select(
        "profile_id",
        "s",
        sf.explode("genres").alias("genre"),
        (
            sf.col("minutes")
            / sf.size("genres")
            * sf.exp(sf.least((sf.col("s") - sf.col("_first")) / tau, sf.lit(MAX_EXPONENT)))
        ).alias("weight"),
    )
    snapshots = snapshot_times(
        plays.select("profile_id", "s"), ["profile_id"], as_of_s, offsets_days=(0,), at_as_of=False
    )
    profile_genres = weighted.select("profile_id", "genre").distinct()
    queries = snapshots.join(profile_genres, "profile_id")
    sums = as_of_sums(weighted, queries, ["profile_id", "genre"], {"weight": [None]})
    per_snapshot = Window.partitionBy("profile_id", "T")
    shares = sums.withColumn("_total", sf.sum("weight__total").over(per_snapshot)).select(
        "profile_id",
        "T",
        "genre",
        sf.when(sf.col("_total") > 0, sf.col("weight__total") / sf.col("_total")).otherwise(0.0).alias("share"),
    )
    ranked = shares.where(sf.col("share") > 0).withColumn(
        "_rank", sf.row_number().over(per_snapshot.orderBy(sf.col("share").desc(), sf.col("genre")))
    )
    top = (
        ranked.where(sf.col("_rank") <= top_n)
        .groupBy("profile_id", "T")
        .agg(sf.sort_array(sf.collect_list(sf.struct("_rank", "genre", "share"))).alias("_top"))
    )
    out = snapshots.join(top, ["profile_id", "T"], "left").select(
        "profile_id",
        sf.timestamp_seconds("T").alias("event_timestamp"),
        sf.coalesce(sf.transform("_top", lambda x: x["genre"]), sf.array().cast("array<string>")).alias(
            "affinity_genres"
        ),
        sf.coalesce(sf.transform("_top", lambda x: x["share"].cast("float")), sf.array().cast("array<float>")).alias(
            "affinity_shares"
        ),
    )
    return out


def title_popularity(plays: DataFrame, titles: DataFrame, as_of_s: int) -> DataFrame:
    """The ``title_popularity`` table (see :func:`features.pipelines.title.title_popularity`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    value_names = ["play", "completed", *[f"viewers_{w}" for w in (*WINDOWS_DAYS, "all")]]
    pair = Window.partitionBy("title_id", "profile_id").orderBy("s", "us", "_row")
    viewed = plays.select(
        "title_id",
        "s",
        "play",
        "completed",
        sf.lag("s").over(pair).alias("_prev"),
        sf.lead("s").over(pair).alias("_next"),
    )

    def point(s: Column, **values: Column) -> Column:
        return sf.struct(
            s.cast("long").alias("s"), *[values.get(v, sf.lit(0.0)).cast("double").alias(v) for v in value_names]
        )

    def flag(condition: Column, value: float) -> Column:
        return sf.when(condition, sf.lit(value)).otherwise(sf.lit(0.0))

    # Each play step emits its own counts at s and, per window, the viewer segments it opens
    # (+1 at s) or closes (-1 at its last play + window): a profile's plays of a title closer
    # than the window merge into one segment (first, last + window], counted once.
    first = sf.col("_prev").isNull()
    at_s = {"play": sf.col("play"), "completed": sf.col("completed"), "viewers_all": flag(first, 1.0)}
    shifted = []
    for days in WINDOWS_DAYS:
        window_s = days * DAY_S
        opens = first | (sf.col("s") - sf.col("_prev") > window_s)
        closes = sf.col("_next").isNull() | (sf.col("_next") - sf.col("s") > window_s)
        at_s[f"viewers_{days}"] = flag(opens, 1.0)
        shifted.append(sf.when(closes, point(sf.col("s") + window_s, **{f"viewers_{days}": sf.lit(-1.0)})))
    exploded = viewed.select("title_id", sf.explode(sf.array(point(sf.col("s"), **at_s), *shifted)).alias("_e"))
    events = exploded.where(sf.col("_e").isNotNull()).select("title_id", "_e.*")
    queries = snapshot_times(plays.select("title_id", "s"), ["title_id"], as_of_s)
    windows: dict[str, list[int | None]] = {"play": [*WINDOWS_S, None], "completed": [None]}
    windows |= {f"viewers_{w}": [None] for w in (*WINDOWS_DAYS, "all")}
    sums = as_of_sums(events, queries, ["title_id"], windows)
    catalog = titles.select(
        sf.col("title_id").cast("string").alias("title_id"),
        sf.unix_timestamp(sf.make_date(sf.col("release_year").cast("int"), sf.lit(1), sf.lit(1)))
        .cast("double")
        .alias("_release"),
        (sf.unix_micros(sf.col("date_added")) / 1e6).alias("_added"),
    )
    joined = sums.join(sf.broadcast(catalog), "title_id", "left")
    total = _count("play__total")
    plays_1d, plays_7d = _count("play__1d"), _count("play__7d")

    def age(column: str) -> Column:
        days = (sf.col("T") - sf.col(column)) / DAY_S
        return sf.when(days >= 0, days).cast("float")

    columns: list[Column] = [sf.col("title_id"), sf.timestamp_seconds("T").alias("event_timestamp")]
    columns += [_count(f"play__{w}d").alias(f"title_plays_{w}d") for w in WINDOWS_DAYS]
    columns += [_count(f"viewers_{w}__total").alias(f"title_viewers_{w}d") for w in WINDOWS_DAYS]
    columns += [
        total.alias("title_plays_total"),
        _count("viewers_all__total").alias("title_viewers_total"),
        _ratio(sf.col("completed__total"), total).alias("title_completion_rate"),
        sf.when(plays_7d > 0, plays_1d * 7.0 / plays_7d).otherwise(0.0).cast("float").alias("title_trend"),
        age("_release").alias("title_days_since_release"),
        age("_added").alias("title_days_since_added"),
    ]
    return joined.select(*columns)


def title_metadata(titles: DataFrame) -> DataFrame:
    """The ``title_metadata`` table (see :func:`features.pipelines.title.title_metadata`)."""
    from pyspark.sql import functions as sf

    def listed(column: str) -> Column:
        return sf.coalesce(sf.transform(column, lambda x: x.cast("string")), sf.array().cast("array<string>"))

    return titles.select(
        sf.col("title_id").cast("string").alias("title_id"),
        sf.lit(METADATA_TIMESTAMP.to_pydatetime()).cast("timestamp").alias("event_timestamp"),
        listed("genres").alias("genres"),
        listed("languages").alias("languages"),
        sf.coalesce(sf.col("maturity_level").cast("long"), sf.lit(3)).cast("long").alias("maturity_level"),
        sf.coalesce(sf.col("release_year").cast("long"), sf.lit(0)).cast("long").alias("release_year"),
        (sf.col("duration_s").cast("double") / 60.0).cast("float").alias("duration_min"),
        sf.coalesce(sf.col("type").cast("string") == "series", sf.lit(False)).cast("long").alias("is_series"),
    )
