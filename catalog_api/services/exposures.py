"""Exposure log: every served row item, buffered in memory and flushed to the lake in batches.

Writing a parquet part per home request would make thousands of tiny files a
minute, so exposures are appended to a buffer and written by
``experiments.exposures.ExposureWriter`` (or straight to the lake's
``exposures`` table until that module exists) when the buffer is large, on
``flush()``, and at shutdown.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain import Exposure
from core.lake import Lake

logger = logging.getLogger(__name__)


def _lake_writer(lake: Lake) -> Any:
    try:
        from experiments.exposures import ExposureWriter
    except ImportError:
        return None
    return ExposureWriter(lake)


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
    experiment_key: str = ""
    variant: str = ""

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
                experiment_key=self.experiment_key,
                variant=self.variant,
            )
            for row_key, model_version, title_ids in self.rows
            for position, title_id in enumerate(title_ids)
        ]

    def __len__(self) -> int:
        return sum(len(title_ids) for _, _, title_ids in self.rows)


class ExposureLog:
    """Thread-safe buffer of exposures with batch flushes to the lake."""

    def __init__(self, lake: Lake, flush_at: int = 5000) -> None:
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
                batch = [e for page in pages for e in page.exposures()]
                writer = _lake_writer(self._lake)
                if writer is not None:
                    writer.write(batch)
                else:
                    import pandas as pd

                    self._lake.write("exposures", pd.DataFrame([e.model_dump() for e in batch]), mode="append")
            except Exception:
                logger.exception("writing exposures of %d pages failed; keeping them for the next flush", len(pages))
                with self._lock:
                    self._buffer[:0] = pages
                    self._buffered += sum(len(p) for p in pages)
                return 0
            logger.info("flushed %d exposures to the lake", len(batch))
            return len(batch)
