"""Exposure logging: a durable record each time a variant changes what a profile is shown.

The lake table is ``exposures`` (schema in ``core.tables``; primary key
``(request_id, row_key, position, experiment_key)``: when a request is in
experiments of several layers, log each shown title once per experiment so
that each experiment's analysis sees the unit). ``ExposureWriter`` has two
modes:

* direct (default): ``write`` appends the batch as one lake part and returns
  only after the lake's manifest lists it. Simple and durable; one part per
  call, so callers should batch (one call per response, not per title).
* journaled (``journal=PATH``): ``write`` appends JSON lines to a local
  append-only journal and returns after ``fsync``; the journal is moved to the
  lake every ``flush_rows`` rows and on ``flush()`` / ``close()``. A crash
  loses nothing: a leftover journal is flushed by the next writer on that path.
  A crash between the lake write and the journal's removal can write a batch
  twice, so delivery is at-least-once and readers deduplicate on the primary
  key (``read_exposures`` does). Use one journal file per process.

We chose direct mode as the default for the API: it keeps the lake the only
place exposures live, at the cost of one small parquet part per response.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pandas as pd

from core.domain import Exposure
from core.errors import DataFormatError
from core.lake import Lake
from core.tables import EXPOSURES

logger = logging.getLogger(__name__)

TABLE = EXPOSURES.name
KEY = list(EXPOSURES.primary_key)


def exposures_frame(exposures: list[Exposure]) -> pd.DataFrame:
    """Exposures as a frame in the lake table's columns, duplicates on the primary key dropped."""
    frame = pd.DataFrame([e.model_dump() for e in exposures], columns=EXPOSURES.schema.names)
    # The lake keeps milliseconds; request timestamps carry microseconds.
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.floor("ms")
    deduplicated = frame.drop_duplicates(subset=KEY, keep="first")
    if len(deduplicated) < len(frame):
        logger.warning("exposures: dropped %d duplicate(s) on %s", len(frame) - len(deduplicated), KEY)
    return deduplicated


def read_exposures(lake: Lake, experiment_key: str | None = None) -> pd.DataFrame:
    """The exposures table (optionally one experiment's rows), deduplicated on the primary key."""
    frame = lake.read_or_empty(TABLE)
    if experiment_key is not None:
        frame = frame[frame["experiment_key"] == experiment_key]
    return frame.drop_duplicates(subset=KEY, keep="first").reset_index(drop=True)


class ExposureWriter:
    """Append exposures to the lake durably (see the module docstring for the two modes)."""

    def __init__(self, lake: Lake, *, journal: Path | None = None, flush_rows: int = 5_000) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be at least 1, got {flush_rows}")
        self.lake = lake
        self.journal = Path(journal) if journal is not None else None
        self.flush_rows = flush_rows
        self._lock = threading.Lock()
        self._pending = 0
        if self.journal is not None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self._pending = sum(len(self._read_journal(p)) for p in self._journal_files())
            if self._pending:
                logger.info("exposures: %d journaled row(s) from an earlier run await flushing", self._pending)

    @property
    def pending(self) -> int:
        """Rows journaled but not yet in the lake (always 0 in direct mode)."""
        return self._pending

    def write(self, exposures: list[Exposure]) -> None:
        """Record ``exposures``; returns once they are durable (lake, or fsynced journal)."""
        if not exposures:
            return
        if self.journal is None:
            self.lake.write(TABLE, exposures_frame(exposures), mode="append")
            return
        lines = "".join(e.model_dump_json() + "\n" for e in exposures)
        with self._lock:
            with open(self.journal, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            self._pending += len(exposures)
            if self._pending >= self.flush_rows:
                self._flush_locked()

    def flush(self) -> int:
        """Move every journaled row to the lake; return how many rows were moved."""
        if self.journal is None:
            return 0
        with self._lock:
            return self._flush_locked()

    def close(self) -> None:
        """Flush what is journaled (call on shutdown)."""
        self.flush()

    def _journal_files(self) -> list[Path]:
        assert self.journal is not None
        return [p for p in (self._flushing_path(), self.journal) if p.exists()]

    def _flushing_path(self) -> Path:
        assert self.journal is not None
        return self.journal.with_name(self.journal.name + ".flushing")

    def _flush_locked(self) -> int:
        assert self.journal is not None
        flushing = self._flushing_path()
        moved = 0
        # A leftover ``.flushing`` file (a crash during an earlier flush) goes first, then the journal.
        for _ in range(2):
            if not flushing.exists():
                if not self.journal.exists():
                    break
                os.replace(self.journal, flushing)
            rows = self._read_journal(flushing)
            if rows:
                self.lake.write(TABLE, exposures_frame(rows), mode="append")
            flushing.unlink()
            moved += len(rows)
        self._pending = 0
        logger.info("exposures: flushed %d journaled row(s) to the lake", moved)
        return moved

    @staticmethod
    def _read_journal(path: Path) -> list[Exposure]:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append(Exposure.model_validate(json.loads(line)))
            except (ValueError, TypeError) as exc:
                if number == len(lines):
                    # A torn last line: the write that produced it never returned, so nobody was told it was saved.
                    logger.warning("exposures: skipping a torn last line in %s", path)
                    continue
                raise DataFormatError(path, f"journal line is not an exposure ({exc})", line=number) from None
        return rows
