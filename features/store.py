"""Open, apply and materialize the workspace's Feast feature store.

The one place that turns :class:`core.settings.Settings` into a
``feast.FeatureStore``: it writes the repo config, registers the package's
definitions when the registry lacks them, and materializes over the data's own
time window (from the feature-table manifest), never "the last 24 hours".
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from core.errors import ServiceUnavailableError
from core.lake import Lake
from core.settings import Settings
from features.feast_repo.config import DEFAULT_PROJECT, write_repo
from features.pipelines import FeatureTablesReport, PipelineOptions, build_feature_tables

if TYPE_CHECKING:
    from feast import FeatureStore
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

#: Changed after every materialize or push, so in-memory caches know to reload.
ONLINE_VERSION_FILE = "online_version"
#: One line per push since the last full change: ``<version token>\t<title ids, comma-separated>``.
ONLINE_CHANGES_FILE = "online_changes.log"
#: Size the change log may reach before a push starts it afresh (a reader behind it reloads in full):
#: every reader parses it at each version it follows, so it stays small.
ONLINE_CHANGES_MAX_BYTES = 1 << 20

#: Materialize from here: catalog metadata rows are stamped at the epoch.
MATERIALIZE_START = pd.Timestamp("1970-01-01", tz="UTC")

#: Rows per online write when loading the latest rows directly.
WRITE_BATCH = 5000

#: How :func:`materialize` loads the online store: ``direct`` writes each entity's
#: latest row itself (pandas + ``write_to_online_store``); ``feast`` calls
#: ``FeatureStore.materialize``, whose file offline store spends most of its time
#: hashing pandas object columns in dask (about 20 s for 50k events here, growing
#: with the data). Both leave the same values online (a test checks it).
Engine = Literal["direct", "feast"]


@dataclass(frozen=True)
class MaterializeReport:
    """What :func:`materialize` did: the feature tables it built and the window it loaded."""

    tables: FeatureTablesReport
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float


def open_store(settings: Settings, project: str = DEFAULT_PROJECT, apply: bool = True) -> FeatureStore:
    """The workspace's feature store, with the repo config (re)generated from ``settings``.

    Args:
        settings: picks the workspace and the online store (``feast_online``).
        project: Feast project; tests pass a unique one to share a Redis server.
        apply: register the definitions when the registry does not have them yet.
    """
    from feast import FeatureStore

    settings.workspace.ensure()
    repo = write_repo(settings, project)
    store = FeatureStore(repo_path=str(repo))
    if apply and not _applied(store):
        apply_definitions(store)
    return store


def apply_definitions(store: FeatureStore) -> list[str]:
    """Register (or update) every Feast object of :mod:`features.feast_repo.definitions`.

    Returns:
        The names of the feature services now registered.

    Raises:
        ServiceUnavailableError: the online store (e.g. Redis) cannot be reached.
    """
    from features.feast_repo.definitions import FEAST_OBJECTS

    with online_store_errors("apply the definitions"):
        store.apply(list(FEAST_OBJECTS))
    bump_online_version(Path(store.repo_path))
    return sorted(s.name for s in store.list_feature_services())


def materialize(
    store: FeatureStore,
    lake: Lake,
    as_of: pd.Timestamp | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
    engine: Engine = "direct",
    spark: SparkSession | None = None,
) -> MaterializeReport:
    """Rebuild the feature tables from the lake, then load their latest rows online.

    The window runs from the epoch (catalog metadata) to the tables' ``as_of``
    plus one second, so the online store ends up with each entity's latest
    snapshot — whatever years the data covers.

    Args:
        store: from :func:`open_store`.
        lake: the lake to build from.
        as_of: last snapshot time; default the midnight after the last event.
        options: pipeline knobs.
        progress: show progress bars.
        engine: ``direct`` (default, fast) or ``feast`` (``FeatureStore.materialize``).
        spark: build the feature tables with this Spark session (``MARQUEE_ENGINE=spark``); None: pandas.
    """
    started = time.perf_counter()
    repo = Path(store.repo_path)
    report = build_feature_tables(lake, repo, as_of=as_of, options=options, progress=progress, spark=spark)
    _, end = report.window
    end = end + timedelta(seconds=1)
    with online_store_errors("materialize"):
        if engine == "feast":
            store.materialize(MATERIALIZE_START.to_pydatetime(), end.to_pydatetime())
        else:
            write_latest_rows(store, end, progress=progress)
    bump_online_version(repo)
    return MaterializeReport(report, MATERIALIZE_START, end, time.perf_counter() - started)


def write_latest_rows(store: FeatureStore, end: pd.Timestamp, progress: bool = False) -> dict[str, int]:
    """Write each entity's latest feature-table row at or before ``end`` to the online store.

    What ``FeatureStore.materialize`` does for a window starting at the epoch,
    without its dask pass over the whole table.

    Returns:
        Rows written per feature view.
    """
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from features.feast_repo.definitions import ONLINE_TABLES

    repo = Path(store.repo_path)
    written: dict[str, int] = {}
    for view, key in ONLINE_TABLES.items():
        frame = pq.read_table(repo / "data" / f"{view}.parquet").to_pandas()
        frame = frame[frame["event_timestamp"] <= end].sort_values("event_timestamp", kind="stable")
        latest = frame.drop_duplicates(key, keep="last").reset_index(drop=True)
        batches = range(0, len(latest), WRITE_BATCH)
        for start in tqdm(batches, desc=f"online {view}", unit="batch", disable=not progress):
            store.write_to_online_store(view, latest.iloc[start : start + WRITE_BATCH])
        written[view] = len(latest)
    logger.info("online store: wrote latest rows %s", written)
    return written


@contextmanager
def online_store_errors(action: str) -> Iterator[None]:
    """Turn "cannot connect" errors of the online store (Redis, SQLite file) into ServiceUnavailableError.

    redis-py's ``ConnectionError`` is not the built-in one, so both are caught.
    """
    import redis.exceptions

    try:
        yield
    except (ConnectionError, OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise ServiceUnavailableError(
            f"cannot reach the Feast online store to {action} ({exc}); "
            "start it or point MARQUEE_FEAST_ONLINE at a running one"
        ) from exc


def online_version(repo: Path) -> str:
    """The current online-data version token ('' before the first materialize)."""
    path = Path(repo) / ONLINE_VERSION_FILE
    return path.read_text() if path.exists() else ""


def bump_online_version(repo: Path, titles: Sequence[str] | None = None) -> None:
    """Mark the online data as changed, so :class:`features.online.OnlineFeatureReader` caches reload.

    ``titles``: the only titles whose features changed (a push), logged with the new
    version so readers reload just those; ``None`` (a materialize): everything changed.
    A reader reloaded every title on every push before, ~1.5 s of CPU per model-server
    worker each time, and at 200 pages/s that stall made model-server calls time out.
    """
    repo = Path(repo)
    token = uuid.uuid4().hex
    changes = repo / ONLINE_CHANGES_FILE
    if titles is None:
        # Everything changed: the log starts again from this version, so a reader that loads it
        # in full can follow the pushes after it title by title.
        tmp = repo / f".{ONLINE_CHANGES_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(f"{token}\t\n", encoding="utf-8")
        os.replace(tmp, changes)
    else:
        if changes.exists() and changes.stat().st_size >= ONLINE_CHANGES_MAX_BYTES:
            changes.unlink(missing_ok=True)
        # One append per push, before the version names it: a reader that sees the version sees its line.
        with changes.open("a", encoding="utf-8") as log:
            log.write(f"{token}\t{','.join(titles)}\n")
    tmp = repo / f".{ONLINE_VERSION_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(token)
    os.replace(tmp, repo / ONLINE_VERSION_FILE)


def online_changes_since(repo: Path, version: str) -> set[str] | None:
    """Titles whose online features changed after ``version``; ``None`` when that cannot be told (reload all).

    ``None`` when ``version`` is not in the change log: a materialize since (the log
    starts again at each), a log grown past ``ONLINE_CHANGES_MAX_BYTES`` and started
    afresh, or a version from before the log.
    """
    path = Path(repo) / ONLINE_CHANGES_FILE
    if not version or not path.exists():
        return None
    changed: set[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        token, _, titles = line.partition("\t")
        if changed is None:
            if token == version:
                changed = set()
            continue
        changed.update(t for t in titles.split(",") if t)
    return changed


def _applied(store: FeatureStore) -> bool:
    from features.feast_repo.definitions import ranker_v1

    try:
        names = {s.name for s in store.list_feature_services()}
    except Exception:  # a missing or empty registry reads as "not applied"
        return False
    return ranker_v1.name in names
