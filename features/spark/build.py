"""Lake → the four feature tables with Spark: what :func:`features.pipelines.compute_feature_tables` computes.

The tables come back as pandas frames (arrow transfer), with the pandas engine's
column types, so the writer, the manifest and Feast are the same for both engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from features.pipelines.title import METADATA_TIMESTAMP
from features.pipelines.windows import DAY_S
from features.spark.plays import plays_from_events
from features.spark.tables import genre_affinity, profile_activity, title_genres, title_metadata, title_popularity

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from features.pipelines.build import FeatureTables, PipelineOptions


def compute_feature_tables_spark(
    events: DataFrame,
    titles: DataFrame,
    episodes: DataFrame | None,
    as_of: pd.Timestamp | None,
    options: PipelineOptions,
) -> FeatureTables:
    """The feature tables from Spark frames of the lake's ``watch_events``, ``titles`` and ``episodes``."""
    from pyspark.sql import functions as sf

    from features.pipelines.build import FeatureTables

    plays = plays_from_events(events, episodes, options.session_gap_s).cache()
    try:
        bounds = plays.agg(sf.max("s").alias("last"), sf.sum("play").alias("plays")).first()
        last = int(bounds["last"]) if bounds is not None and bounds["last"] is not None else 0
        n_plays = int(bounds["plays"]) if bounds is not None and bounds["plays"] is not None else 0
        as_of_s = int(pd.Timestamp(as_of).timestamp()) if as_of is not None else (last // DAY_S + 1) * DAY_S
        genres = title_genres(titles).cache()
        frames = {
            "profile_activity": profile_activity(plays, genres, as_of_s),
            "profile_genre_affinity": genre_affinity(
                plays, genres, as_of_s, options.half_life_days, options.top_genres
            ),
            "title_popularity": title_popularity(plays, titles, as_of_s),
            "title_metadata": title_metadata(titles),
        }
        tables = {name: to_pandas(frame) for name, frame in frames.items()}
        # The pandas engine stamps catalog metadata with a seconds-unit constant; keep its dtype.
        metadata = tables["title_metadata"]
        metadata["event_timestamp"] = metadata["event_timestamp"].dt.as_unit(METADATA_TIMESTAMP.unit)
        genres.unpersist()
    finally:
        plays.unpersist()
    return FeatureTables(tables, n_plays, pd.Timestamp(as_of_s, unit="s", tz="UTC"))


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """A Spark frame as pandas through arrow: UTC nanosecond timestamps, arrow-backed list columns.

    The same types the pandas engine produces, so a feature table is written (and compared) alike.
    """
    table = frame.toArrow()
    columns = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            columns[field.name] = (
                pd.Series(column.to_pandas()).dt.tz_convert("UTC").dt.as_unit("ns")
                if field.type.tz
                else pd.Series(column.to_pandas()).dt.tz_localize("UTC").dt.as_unit("ns")
            )
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            columns[field.name] = pd.Series(
                pd.arrays.ArrowExtensionArray(column.combine_chunks().cast(pa.list_(field.type.value_type)))
            )
        else:
            columns[field.name] = column.to_pandas()
    return pd.DataFrame(columns)
