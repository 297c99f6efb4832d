"""Lake → feature tables: the as-of snapshots the Feast sources read.

Each feature table has one row per (entity, ``event_timestamp``) whose values use
only plays strictly before that timestamp, so a Feast point-in-time join of a
label at time t (which picks the last row at or before t) never sees the future.
Rows are written for the midnights at which an entity's day-window features
change (see :func:`features.pipelines.windows.snapshot_times`), up to ``as_of``:
the midnight after the data's last event, not the wall clock — MovieLens ends in
2018, and "the last 24 hours" of today would be empty.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from core.errors import NotFoundError
from core.lake import Lake
from features.pipelines.plays import DEFAULT_SESSION_GAP, plays_from_events
from features.pipelines.profile import DEFAULT_HALF_LIFE_DAYS, DEFAULT_TOP_GENRES, genre_affinity, profile_activity
from features.pipelines.title import title_metadata, title_popularity
from features.pipelines.windows import DAY_S, snapshot_times, to_seconds

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

#: Feature tables, by the name of their file under ``<feast_dir>/data/``.
FEATURE_TABLES = ("profile_activity", "profile_genre_affinity", "title_popularity", "title_metadata")

#: What to do when the lake has no watch events.
NO_EVENTS = "the lake has no watch events; load a dataset first (`marquee data load ...`)"

#: The manifest written next to the tables: data window, row counts, options.
MANIFEST = "feature_tables.json"


@dataclass(frozen=True)
class PipelineOptions:
    """Knobs of the feature pipelines (defaults suit both MovieLens and the app's events)."""

    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    top_genres: int = DEFAULT_TOP_GENRES
    session_gap_s: int = int(DEFAULT_SESSION_GAP.total_seconds())


@dataclass(frozen=True)
class FeatureTablesReport:
    """What :func:`build_feature_tables` wrote.

    Attributes:
        data_start: the midnight before the first event (UTC, ISO 8601).
        as_of: the midnight after the last event: no row is stamped later.
        rows: rows per feature table.
        events: watch events read; plays: plays they collapsed into.
        seconds: wall time of the computation (reading the lake included).
        genres: the genre vocabulary seen in the catalog.
    """

    data_start: str
    as_of: str
    rows: dict[str, int]
    events: int
    plays: int
    seconds: float
    genres: list[str] = field(default_factory=list)
    options: dict[str, float] = field(default_factory=dict)

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(data_start, as_of)`` as UTC timestamps: what materialize loads."""
        return pd.Timestamp(self.data_start), pd.Timestamp(self.as_of)


@dataclass(frozen=True)
class FeatureTables:
    """The computed tables plus what they were computed from.

    Attributes:
        tables: ``{name: frame}`` for :data:`FEATURE_TABLES`.
        plays: plays the events collapsed into.
        as_of: the last snapshot time (UTC).
    """

    tables: dict[str, pd.DataFrame]
    plays: int
    as_of: pd.Timestamp


def compute_feature_tables(
    events: pd.DataFrame,
    titles: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
) -> FeatureTables:
    """Compute the four feature tables from lake-shaped frames (no I/O).

    Args:
        events: lake ``watch_events``; titles: lake ``titles``; episodes: lake ``episodes``.
        as_of: last snapshot time; default the midnight after the last event.
        options: pipeline knobs.
        progress: show a progress bar over the tables.

    Returns:
        The tables; their columns are documented in :mod:`features.pipelines.profile`
        and :mod:`features.pipelines.title`.
    """
    options = options or PipelineOptions()
    plays = plays_from_events(events, episodes, timedelta(seconds=options.session_gap_s))
    title_genres = _title_genres(titles)
    as_of_s = _as_of_seconds(plays, as_of)
    steps = tqdm(total=4, desc="feature tables", unit="table", disable=not progress)
    tables: dict[str, pd.DataFrame] = {}

    profiles = pd.Index(pd.unique(plays["profile_id"].to_numpy()))
    play_s = to_seconds(plays["ts"])
    codes, seconds = snapshot_times(
        profiles.get_indexer(plays["profile_id"].to_numpy()).astype(np.int64), play_s, as_of_s
    )
    tables["profile_activity"] = profile_activity(plays, title_genres, profiles.to_numpy()[codes], seconds)
    steps.update()
    codes, seconds = snapshot_times(
        profiles.get_indexer(plays["profile_id"].to_numpy()).astype(np.int64),
        play_s,
        as_of_s,
        offsets_days=(0,),
        at_as_of=False,
    )
    tables["profile_genre_affinity"] = genre_affinity(
        plays, title_genres, profiles.to_numpy()[codes], seconds, options.half_life_days, options.top_genres
    )
    steps.update()
    catalog = pd.Index(pd.unique(plays["title_id"].to_numpy()))
    codes, seconds = snapshot_times(catalog.get_indexer(plays["title_id"].to_numpy()).astype(np.int64), play_s, as_of_s)
    tables["title_popularity"] = title_popularity(plays, titles, catalog.to_numpy()[codes], seconds)
    steps.update()
    tables["title_metadata"] = title_metadata(titles)
    steps.update()
    steps.close()
    return FeatureTables(tables, int(plays["play"].sum()), pd.Timestamp(as_of_s, unit="s", tz="UTC"))


def build_feature_tables(
    lake: Lake,
    out_dir: Path,
    as_of: pd.Timestamp | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
    spark: SparkSession | None = None,
) -> FeatureTablesReport:
    """Read the lake, compute the feature tables and write them under ``out_dir/data``.

    Each table is written to a temporary file and renamed into place, and the
    manifest last, so a failure leaves the previous tables and manifest intact.

    Args:
        spark: compute with this Spark session (``MARQUEE_ENGINE=spark``); None: pandas.

    Raises:
        NotFoundError: the lake has no watch events or no titles yet.
    """
    started = time.perf_counter()
    options = options or PipelineOptions()
    if spark is not None:
        computed, n_events, first_s = _compute_with_spark(spark, lake, as_of, options)
    else:
        events = lake.read("watch_events", ["profile_id", "title_id", "ts", "position_s", "duration_s"])
        if events.empty:
            raise NotFoundError(NO_EVENTS)
        titles = lake.read("titles")
        episodes = lake.read_or_empty("episodes", ["episode_id", "series_id"])
        computed = compute_feature_tables(events, titles, episodes, as_of, options, progress)
        n_events, first_s = len(events), int(to_seconds(events["ts"]).min())
    data_dir = Path(out_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in computed.tables.items():
        write_table(frame, data_dir / f"{name}.parquet")
    report = FeatureTablesReport(
        data_start=pd.Timestamp((first_s // DAY_S) * DAY_S, unit="s", tz="UTC").isoformat(),
        as_of=computed.as_of.isoformat(),
        rows={name: len(frame) for name, frame in computed.tables.items()},
        events=n_events,
        plays=computed.plays,
        seconds=time.perf_counter() - started,
        genres=sorted({g for genres in computed.tables["title_metadata"]["genres"] for g in genres}),
        options={k: float(v) for k, v in asdict(options).items()},
    )
    _write_manifest(Path(out_dir), report)
    logger.info("feature tables: %s rows from %d events in %.1f s", report.rows, report.events, report.seconds)
    return report


def _compute_with_spark(
    spark: SparkSession, lake: Lake, as_of: pd.Timestamp | None, options: PipelineOptions
) -> tuple[FeatureTables, int, int]:
    """The tables computed by the Spark engine, the events read and the first event's second."""
    from pyspark.sql import functions as sf

    from features.spark.build import compute_feature_tables_spark
    from features.spark.lake import read_table

    events = read_table(spark, lake, "watch_events", ["profile_id", "title_id", "ts", "position_s", "duration_s"])
    stats = events.agg(sf.count(sf.lit(1)).alias("n"), sf.min(sf.unix_seconds("ts")).alias("first")).first()
    if stats is None or not stats["n"]:
        raise NotFoundError(NO_EVENTS)
    if not lake.exists("titles"):
        raise NotFoundError(f"lake table 'titles' is empty or missing under {lake.root}")
    titles = read_table(spark, lake, "titles")
    episodes = read_table(spark, lake, "episodes", ["episode_id", "series_id"]) if lake.exists("episodes") else None
    computed = compute_feature_tables_spark(events, titles, episodes, as_of, options)
    return computed, int(stats["n"]), int(stats["first"])


def read_manifest(out_dir: Path) -> FeatureTablesReport:
    """The report of the last :func:`build_feature_tables` run in ``out_dir``.

    Raises:
        NotFoundError: no feature tables were built there yet.
    """
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        raise NotFoundError(f"no feature tables under {out_dir}; run `marquee features materialize` first")
    return FeatureTablesReport(**json.loads(path.read_text()))


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write one feature table atomically (temp file + rename)."""
    # Without pandas metadata: readers (Feast's dask store) must not try to rebuild
    # pandas' arrow-backed list dtypes, which they cannot parse.
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_manifest(out_dir: Path, report: FeatureTablesReport) -> None:
    tmp = out_dir / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(asdict(report), indent=2))
    os.replace(tmp, out_dir / MANIFEST)


def _as_of_seconds(plays: pd.DataFrame, as_of: pd.Timestamp | None) -> int:
    if as_of is not None:
        return int(pd.Timestamp(as_of).timestamp())
    last = int(to_seconds(plays["ts"]).max()) if len(plays) else 0
    return (last // DAY_S + 1) * DAY_S


def _title_genres(titles: pd.DataFrame) -> dict[str, list[str]]:
    if titles.empty:
        return {}
    genres = titles["genres"].map(lambda v: [str(x) for x in v] if v is not None and len(v) else [])
    return dict(zip(titles["title_id"].astype(str), genres, strict=True))
