"""The parsed form of a dataset and the one place that writes it into the lake.

Every loader first parses its files into a :class:`DatasetFrames` (a pure step
that needs no lake, so evaluation can call it on any path), then
:func:`write_frames` validates all five tables against their lake schemas and
only then writes them. A file that fails to parse, or a frame that fails
validation, therefore leaves the lake exactly as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from core.lake import Lake, to_arrow
from core.tables import TABLES

logger = logging.getLogger(__name__)

#: The tables a dataset replaces, in the order they are written.
DATASET_TABLES = ("titles", "episodes", "accounts", "profiles", "watch_events")


@dataclass(frozen=True)
class DatasetFrames:
    """One dataset parsed into lake-shaped DataFrames (columns as in ``core.tables``).

    String columns are ``object`` or pyarrow-backed (``pd.ArrowDtype(pa.string())``, used for
    the large id columns of rating datasets); both behave alike in pandas and in the lake.

    Attributes:
        source: what was read, e.g. ``"movielens:ml-latest-small"`` or ``"synthetic"``.
        titles: one row per movie or series.
        episodes: one row per episode of a series (may be empty).
        accounts: one row per account.
        profiles: one row per profile.
        watch_events: one row per progress report or rating.
        notes: things the parser noticed and repaired (shown by the CLI, logged).
    """

    source: str
    titles: pd.DataFrame
    episodes: pd.DataFrame
    accounts: pd.DataFrame
    profiles: pd.DataFrame
    watch_events: pd.DataFrame
    notes: tuple[str, ...] = ()

    def table(self, name: str) -> pd.DataFrame:
        """The frame of one lake table by name."""
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(self.table(name)) for name in DATASET_TABLES}


@dataclass(frozen=True)
class IngestReport:
    """What an ingest wrote: rows per table and how long it took.

    ``seconds`` covers parsing (or generation) plus validation and writing.
    """

    source: str
    rows: dict[str, int]
    seconds: float
    path: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def events(self) -> int:
        """Watch events written (the figure benchmarks divide by time)."""
        return self.rows.get("watch_events", 0)


def empty_frame(name: str) -> pd.DataFrame:
    """An empty DataFrame with the columns and dtypes of lake table ``name``."""
    return TABLES[name].schema.empty_table().to_pandas()


def to_tables(frames: DatasetFrames) -> dict[str, pa.Table]:
    """Validate every frame against its lake schema; raise ``SchemaError`` before anything is written."""
    return {name: to_arrow(TABLES[name], frames.table(name)) for name in DATASET_TABLES}


def write_frames(
    lake: Lake, frames: DatasetFrames, *, started: float | None = None, path: str | None = None
) -> IngestReport:
    """Replace the lake's dataset tables with ``frames``; validate all of them first.

    Args:
        lake: the lake to write into.
        frames: the parsed dataset.
        started: ``time.perf_counter()`` when parsing began, so the report times the whole ingest.
        path: the input path, for the report.

    Returns:
        The rows written per table and the seconds taken.
    """
    begin = time.perf_counter() if started is None else started
    tables = to_tables(frames)
    rows = {name: lake.write(name, table, mode="overwrite") for name, table in tables.items()}
    report = IngestReport(
        source=frames.source, rows=rows, seconds=time.perf_counter() - begin, path=path, notes=frames.notes
    )
    for note in frames.notes:
        logger.info("%s: %s", frames.source, note)
    logger.info("ingest %s: %s in %.1f s", frames.source, rows, report.seconds)
    return report
