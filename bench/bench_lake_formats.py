"""Delta Lake (``deltalake``) vs Apache Iceberg (``pyiceberg``, SQL catalog on SQLite) on the lake's workload.

The numbers behind docs/lake.md's choice: the same appends (one commit per
export), two writer processes appending at once, a row-level delete (erasure),
an incremental read of one export, and whether compaction and vacuum exist.
Both libraries retry a commit that lost a race themselves; a writer here
also retries (and counts) a conflict that still reaches it.

Usage: ``python bench/bench_lake_formats.py [--exports 50] [--events 500]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

SCHEMA = pa.schema([("event_id", pa.string()), ("profile_id", pa.string()), ("position_s", pa.int32())])


def _batch(export: int, events: int, writer: str = "w") -> pa.Table:
    return pa.table(
        {
            "event_id": [f"{writer}-{export}-{i}" for i in range(events)],
            "profile_id": [f"p{i % 100}" for i in range(events)],
            "position_s": pa.array(range(events), pa.int32()),
        },
        schema=SCHEMA,
    )


class DeltaFormat:
    """The lake's tables as Delta Lake writes them."""

    name = "Delta Lake (deltalake)"

    def __init__(self, root: str) -> None:
        self.uri = f"{root}/events"

    def create(self) -> None:
        from deltalake import write_deltalake

        write_deltalake(self.uri, SCHEMA.empty_table())

    def append(self, table: pa.Table) -> int:
        from deltalake import write_deltalake

        write_deltalake(self.uri, table, mode="append")
        return 0

    def token(self) -> int:
        from deltalake import DeltaTable

        return int(DeltaTable(self.uri).version())

    def delete(self, profile: str) -> None:
        from deltalake import DeltaTable

        DeltaTable(self.uri).delete(f"profile_id = '{profile}'")

    def read_since(self, token: int) -> int:
        from deltalake import DeltaTable

        table = DeltaTable(self.uri)
        return pa.RecordBatchReader.from_stream(table.load_cdf(starting_version=token + 1)).read_all().num_rows

    def rows(self) -> int:
        from deltalake import DeltaTable

        return int(DeltaTable(self.uri).to_pyarrow_dataset().count_rows())

    def compact(self) -> str:
        from deltalake import DeltaTable

        table = DeltaTable(self.uri)
        table.optimize.compact()
        table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
        return f"optimize.compact + vacuum: {len(DeltaTable(self.uri).file_uris())} file(s)"


class IcebergFormat:
    """The same tables in Iceberg, with pyiceberg's SQL catalog on SQLite."""

    name = "Iceberg (pyiceberg, SQLite catalog)"

    def __init__(self, root: str) -> None:
        self.root = root

    def _catalog(self) -> Any:
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog("lake", uri=f"sqlite:///{self.root}/catalog.db", warehouse=f"file://{self.root}")

    def create(self) -> None:
        catalog = self._catalog()
        catalog.create_namespace("marquee")
        catalog.create_table("marquee.events", schema=SCHEMA)

    def append(self, table: pa.Table) -> int:
        from pyiceberg.exceptions import CommitFailedException

        retries = 0
        while True:
            try:
                self._catalog().load_table("marquee.events").append(table)
                return retries
            except CommitFailedException:
                retries += 1

    def token(self) -> int:
        snapshot = self._catalog().load_table("marquee.events").current_snapshot()
        return int(snapshot.snapshot_id)

    def delete(self, profile: str) -> None:
        self._catalog().load_table("marquee.events").delete(f"profile_id = '{profile}'")

    def read_since(self, token: int) -> int:
        table = self._catalog().load_table("marquee.events")
        return int(table.incremental_append_scan(from_snapshot_id_exclusive=token).to_arrow().num_rows)

    def rows(self) -> int:
        return int(self._catalog().load_table("marquee.events").scan().to_arrow().num_rows)

    def compact(self) -> str:
        table = self._catalog().load_table("marquee.events")
        has = hasattr(table, "rewrite_data_files") or hasattr(table.maintenance, "rewrite_data_files")
        return "rewrite_data_files available" if has else "no compaction in pyiceberg (expire_snapshots only)"


FORMATS: dict[str, Callable[[str], DeltaFormat | IcebergFormat]] = {"delta": DeltaFormat, "iceberg": IcebergFormat}


def _writer(kind: str, root: str, name: str, exports: int, events: int, retries: Any) -> None:
    lake = FORMATS[kind](root)
    total = 0
    for export in range(exports):
        total += lake.append(_batch(export, events, name))
    retries.put(total)


def _measure(kind: str, exports: int, events: int) -> list[object]:
    with tempfile.TemporaryDirectory() as root:
        lake = FORMATS[kind](root)
        lake.create()
        began = time.perf_counter()
        for export in range(exports):
            lake.append(_batch(export, events))
        append_ms = 1000 * (time.perf_counter() - began) / exports
        token = lake.token()
        lake.append(_batch(exports, events, "new"))
        began = time.perf_counter()
        increment = lake.read_since(token)
        increment_s = time.perf_counter() - began
        began = time.perf_counter()
        lake.delete("p7")
        delete_s = time.perf_counter() - began
        compaction = lake.compact()
    with tempfile.TemporaryDirectory() as root:
        FORMATS[kind](root).create()
        context = multiprocessing.get_context("spawn")
        retries: Any = context.Queue()
        per_writer = max(1, exports // 2)
        writers = [
            context.Process(target=_writer, args=(kind, root, name, per_writer, events, retries)) for name in "ab"
        ]
        began = time.perf_counter()
        for process in writers:
            process.start()
        for process in writers:
            process.join()
        concurrent_s = time.perf_counter() - began
        stored = FORMATS[kind](root).rows()
        conflicts = retries.get() + retries.get()
    lost = 2 * per_writer * events - stored
    return [
        FORMATS[kind](".").name,
        round(append_ms, 1),
        f"{concurrent_s:.1f} s, {lost} lost, {conflicts} retried by us",
        f"{delete_s:.2f}",
        f"{increment} rows in {increment_s:.3f} s",
        compaction,
    ]


def main() -> None:
    """Measure both formats and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=50)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    print(f"table formats on {os.cpu_count()} CPU(s): {args.exports} appends of {args.events} rows\n")
    print("| format | ms per append | 2 writers at once | delete s | increment of 1 export | compaction |")
    print("|---|---:|---|---:|---|---|")
    for kind in FORMATS:
        print("| " + " | ".join(str(cell) for cell in _measure(kind, args.exports, args.events)) + " |")
    print(f"\n(load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
