"""The lake under many exports: files, time, and the cost of reading the whole table vs the increment.

Appends ``--exports`` batches of ``--events`` watch events to a fresh lake (one
commit each, as the API's exporter does), then measures: files in the current
snapshot and on disk, a full read, compaction and vacuum, a full read after
them, and an incremental read (``Lake.read_since``) of one more export beside a
full read of the same table. ``--writers`` processes append concurrently in a
second run (every row must arrive).

Usage: ``python bench/bench_lake.py [--exports 200] [--events 500] [--writers 2]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from results_json import write_results

from core.lake import Lake

TABLE = "watch_events"


def _batch(export: int, events: int, writer: str = "w") -> pd.DataFrame:
    rng = np.random.default_rng(export)
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=export)
    return pd.DataFrame(
        {
            "event_id": [f"{writer}-{export}-{i}" for i in range(events)],
            "profile_id": [f"p{int(p)}" for p in rng.integers(0, 5_000, events)],
            "title_id": [f"t{int(t)}" for t in rng.integers(0, 2_000, events)],
            "ts": start + pd.to_timedelta(rng.integers(0, 60_000, events), unit="ms"),
            "position_s": rng.integers(0, 3_600, events).astype("int32"),
            "duration_s": 3_600,
            "device": "tv",
            "country": "US",
        }
    )


def _files_on_disk(lake: Lake) -> int:
    return len(list(lake.table_dir(TABLE).glob("*.parquet")))


def _timed(step: Callable[[], object]) -> float:
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def _writer(root: str, name: str, exports: int, events: int) -> None:
    lake = Lake(Path(root))
    for export in range(exports):
        lake.write(TABLE, _batch(export, events, name), mode="append")


def main() -> None:
    """Run the steps and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=200, help="appends (one per export)")
    parser.add_argument("--events", type=int, default=500, help="watch events per export")
    parser.add_argument("--writers", type=int, default=2, help="concurrent writer processes in the second run")
    args = parser.parse_args()
    print(f"lake benchmark (Delta Lake) on {os.cpu_count()} CPU(s): {args.exports} exports x {args.events} events\n")
    rows: list[list[object]] = []

    def row(step: str, seconds: float, lake: Lake, rows_read: int | str = "") -> None:
        snapshot, disk = len(lake.parts(TABLE)), _files_on_disk(lake)
        rows.append([step, round(seconds, 3), snapshot, disk, rows_read])
        print(f"| {step} | {seconds:.3f} | {snapshot} | {disk} | {rows_read} |")

    print("| step | seconds | files in snapshot | files on disk | rows read |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp), retention_hours=0)
        batches = [_batch(export, args.events) for export in range(args.exports)]
        began = time.perf_counter()
        for batch in batches:
            lake.write(TABLE, batch, mode="append")
        appended = time.perf_counter() - began
        row(f"{args.exports} exports (append, {1000 * appended / args.exports:.0f} ms each)", appended, lake)
        began = time.perf_counter()
        count = lake.read_arrow(TABLE).num_rows
        row("full read before compaction", time.perf_counter() - began, lake, count)
        token = lake.read_since(TABLE, None, ["profile_id", "title_id", "ts"]).version
        row("compact", _timed(lambda: lake.compact(TABLE)), lake)
        row("vacuum (retention 0 h)", _timed(lambda: lake.vacuum(TABLE, retention_hours=0)), lake)
        lake.write(TABLE, _batch(args.exports, args.events), mode="append")
        began = time.perf_counter()
        count = lake.read_arrow(TABLE, ["profile_id", "title_id", "ts"]).num_rows
        row("full read after compaction + 1 export", time.perf_counter() - began, lake, count)
        began = time.perf_counter()
        increment = lake.read_since(TABLE, token, ["profile_id", "title_id", "ts"])
        assert not increment.full
        row("incremental read of that export", time.perf_counter() - began, lake, increment.rows.num_rows)
        began = time.perf_counter()
        unchanged = lake.read_since(TABLE, increment.version, ["profile_id", "title_id", "ts"])
        row("incremental read, nothing new", time.perf_counter() - began, lake, unchanged.rows.num_rows)
    if args.writers > 1:
        with tempfile.TemporaryDirectory() as tmp:
            per_writer = max(1, args.exports // args.writers)
            context = multiprocessing.get_context("spawn")
            writers = [
                context.Process(target=_writer, args=(tmp, f"w{i}", per_writer, args.events))
                for i in range(args.writers)
            ]
            began = time.perf_counter()
            for process in writers:
                process.start()
            for process in writers:
                process.join()
            seconds = time.perf_counter() - began
            lake = Lake(Path(tmp))
            stored = lake.read_arrow(TABLE, ["event_id"]).num_rows
            expected = args.writers * per_writer * args.events
            assert stored == expected, f"lost rows: {stored} of {expected}"
            row(f"{args.writers} writer processes x {per_writer} exports at once (0 lost)", seconds, lake, stored)
    write_results(
        "lake",
        "The lake (Delta Lake tables)",
        [
            {
                "caption": f"{args.exports} exports of {args.events} watch events each, then compaction; "
                "full read vs incremental read (`Lake.read_since`)",
                "columns": ["step", "seconds", "files in snapshot", "files on disk", "rows read"],
                "rows": rows,
            }
        ],
    )


if __name__ == "__main__":
    main()
