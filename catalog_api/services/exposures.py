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


class ExposureLog:
    """Thread-safe buffer of exposures with batch flushes to the lake."""

    def __init__(self, lake: Lake, flush_at: int = 5000) -> None:
        self._lake = lake
        self._flush_at = flush_at
        self._buffer: list[Exposure] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def log(self, exposures: list[Exposure]) -> None:
        """Add exposures; flush in a background thread when the buffer is full."""
        with self._lock:
            self._buffer.extend(exposures)
            full = len(self._buffer) >= self._flush_at
        if full:
            threading.Thread(target=self.flush, name="exposure-flush", daemon=True).start()

    def pending(self) -> list[Exposure]:
        """A copy of the exposures not written yet."""
        with self._lock:
            return list(self._buffer)

    def forget_profiles(self, profile_ids: set[str]) -> int:
        """Drop buffered exposures of erased profiles; returns how many."""
        with self._lock:
            before = len(self._buffer)
            self._buffer = [e for e in self._buffer if e.profile_id not in profile_ids]
            return before - len(self._buffer)

    def flush(self) -> int:
        """Write the buffer to the lake; on failure the exposures go back into the buffer."""
        with self._flushing:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                writer = _lake_writer(self._lake)
                if writer is not None:
                    writer.write(batch)
                else:
                    import pandas as pd

                    self._lake.write("exposures", pd.DataFrame([e.model_dump() for e in batch]), mode="append")
            except Exception:
                logger.exception("writing %d exposures failed; keeping them for the next flush", len(batch))
                with self._lock:
                    self._buffer[:0] = batch
                return 0
            logger.info("flushed %d exposures to the lake", len(batch))
            return len(batch)
