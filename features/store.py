"""Open, apply and materialize the workspace's Feast feature store.

The one place that turns :class:`core.settings.Settings` into a
``feast.FeatureStore``: it writes the repo config, registers the package's
definitions when the registry lacks them, and materializes over the data's own
time window (from the feature-table manifest), never "the last 24 hours".
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.errors import ServiceUnavailableError
from core.lake import Lake
from core.settings import Settings
from features.feast_repo.config import DEFAULT_PROJECT, write_repo
from features.pipelines import FeatureTablesReport, PipelineOptions, build_feature_tables

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

#: Changed after every materialize or push, so in-memory caches know to reload.
ONLINE_VERSION_FILE = "online_version"

#: Materialize from here: catalog metadata rows are stamped at the epoch.
MATERIALIZE_START = pd.Timestamp("1970-01-01", tz="UTC")


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

    try:
        store.apply(list(FEAST_OBJECTS))
    except (ConnectionError, OSError) as exc:
        raise ServiceUnavailableError(f"cannot reach the Feast online store: {exc}") from exc
    _bump_online_version(Path(store.repo_path))
    return sorted(s.name for s in store.list_feature_services())


def materialize(
    store: FeatureStore,
    lake: Lake,
    as_of: pd.Timestamp | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
) -> MaterializeReport:
    """Rebuild the feature tables from the lake, then load their latest rows online.

    The window runs from the epoch (catalog metadata) to the tables' ``as_of``
    plus one second, so the online store ends up with each entity's latest
    snapshot — whatever years the data covers.
    """
    import time

    started = time.perf_counter()
    repo = Path(store.repo_path)
    report = build_feature_tables(lake, repo, as_of=as_of, options=options, progress=progress)
    _, end = report.window
    end = end + timedelta(seconds=1)
    try:
        store.materialize(MATERIALIZE_START.to_pydatetime(), end.to_pydatetime())
    except (ConnectionError, OSError) as exc:
        raise ServiceUnavailableError(f"cannot reach the Feast online store: {exc}") from exc
    _bump_online_version(repo)
    return MaterializeReport(report, MATERIALIZE_START, end, time.perf_counter() - started)


def online_version(repo: Path) -> str:
    """The current online-data version token ('' before the first materialize)."""
    path = Path(repo) / ONLINE_VERSION_FILE
    return path.read_text() if path.exists() else ""


def _bump_online_version(repo: Path) -> None:
    tmp = repo / f".{ONLINE_VERSION_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(uuid.uuid4().hex)
    os.replace(tmp, repo / ONLINE_VERSION_FILE)


def _applied(store: FeatureStore) -> bool:
    from features.feast_repo.definitions import ranker_v1

    try:
        names = {s.name for s in store.list_feature_services()}
    except Exception:  # a missing or empty registry reads as "not applied"
        return False
    return ranker_v1.name in names
