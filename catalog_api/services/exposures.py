"""Exposure log: every served row item, buffered in memory and flushed to the lake in batches.

Writing a parquet part per home request would make thousands of tiny files a
minute, so pages are buffered and appended to the lake's ``exposures`` table
(the table ``experiments.exposures`` reads) when the buffer is large, every
30 s, and at shutdown. A crash loses at most that window of exposures; the
watch events, which are the outcomes, are durable before their 2xx.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from core.domain import Exposure
from core.lake import Lake
from core.tables import EXPOSURES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExposurePage:
    """The exposures of one served page in compact form: ``(row_key, model_version, title_ids)`` per row.

    A page shows about a hundred titles; building one validated ``Exposure`` per
    title on the request path would cost more than the rest of the page, so
    pages are buffered like this and expanded when flushed, off the request path.
    """

    request_id: str
    ts: datetime
    profile_id: str
    rows: list[tuple[str, str, list[str]]]
    #: ``(experiment_key, variant)`` of every experiment the page was in; each gets its own exposure
    #: rows (the lake's key includes ``experiment_key``); no experiment logs ``("", "")``.
    assignments: list[tuple[str, str]] = field(default_factory=list)

    def arms(self) -> list[tuple[str, str]]:
        """The assignments, or one empty arm when the page was in no experiment."""
        return self.assignments or [("", "")]

    def exposures(self) -> list[Exposure]:
        """One ``Exposure`` per title shown."""
        return [
            Exposure(
                request_id=self.request_id,
                ts=self.ts,
                profile_id=self.profile_id,
                row_key=row_key,
                position=position,
                title_id=title_id,
                model_version=model_version,
                experiment_key=experiment_key,
                variant=variant,
            )
            for experiment_key, variant in self.arms()
            for row_key, model_version, title_ids in self.rows
            for position, title_id in enumerate(title_ids)
        ]

    def __len__(self) -> int:
        return len(self.arms()) * sum(len(title_ids) for _, _, title_ids in self.rows)


def pages_table(pages: list[ExposurePage]) -> pa.Table:
    """The lake's ``exposures`` columns for many pages, built column-wise.

    About a hundred times cheaper than one validated ``Exposure`` per row, which
    matters at a few hundred pages a second; ``Lake.write`` still validates the
    table against the ``exposures`` schema.
    """
    columns: dict[str, list[Any]] = {name: [] for name in EXPOSURES.schema.names}
    for page in pages:
        for (experiment_key, variant), (row_key, model_version, title_ids) in (
            (arm, row) for arm in page.arms() for row in page.rows
        ):
            n = len(title_ids)
            columns["request_id"] += [page.request_id] * n
            columns["ts"] += [page.ts] * n
            columns["profile_id"] += [page.profile_id] * n
            columns["row_key"] += [row_key] * n
            columns["position"] += range(n)
            columns["title_id"] += title_ids
            columns["model_version"] += [model_version] * n
            columns["experiment_key"] += [experiment_key] * n
            columns["variant"] += [variant] * n
    return pa.table(columns, schema=EXPOSURES.schema)


class ExposureLog:
    """Thread-safe buffer of exposures with batch flushes to the lake."""

    def __init__(self, lake: Lake, flush_at: int = 50_000) -> None:
        self._lake = lake
        self._flush_at = flush_at
        self._buffer: list[ExposurePage] = []
        self._buffered = 0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def log_page(self, page: ExposurePage) -> None:
        """Add a page's exposures; flush in a background thread when the buffer is full."""
        with self._lock:
            self._buffer.append(page)
            self._buffered += len(page)
            full = self._buffered >= self._flush_at
        if full and not self._flushing.locked():
            threading.Thread(target=self.flush, name="exposure-flush", daemon=True).start()

    def pending(self) -> list[Exposure]:
        """The exposures not written yet."""
        with self._lock:
            pages = list(self._buffer)
        return [e for page in pages for e in page.exposures()]

    def forget_profiles(self, profile_ids: set[str]) -> int:
        """Drop buffered exposures of erased profiles; returns how many."""
        with self._lock:
            dropped = [p for p in self._buffer if p.profile_id in profile_ids]
            self._buffer = [p for p in self._buffer if p.profile_id not in profile_ids]
            removed = sum(len(p) for p in dropped)
            self._buffered -= removed
            return removed

    def flush(self) -> int:
        """Write the buffer to the lake; on failure the exposures go back into the buffer."""
        with self._flushing:
            with self._lock:
                pages, self._buffer, self._buffered = self._buffer, [], 0
            if not pages:
                return 0
            try:
                table = pages_table(pages)
                self._lake.write(EXPOSURES.name, table, mode="append")
            except Exception:
                logger.exception("writing exposures of %d pages failed; keeping them for the next flush", len(pages))
                with self._lock:
                    self._buffer[:0] = pages
                    self._buffered += sum(len(p) for p in pages)
                return 0
            logger.info("flushed %d exposures to the lake", table.num_rows)
            return int(table.num_rows)
