"""The lake: parquet tables with explicit arrow schemas, validated on write.

Layout: ``<lake>/<table>/part-<uuid>.parquet`` files plus a ``_manifest.json``
that lists the parts that make up the table. Readers read only the parts the
manifest lists, and every change replaces the manifest atomically (temp file +
``os.replace``), so a failure at any point leaves the previous table intact.
Appends (the API exporting new events) add a part instead of rewriting the
table; concurrent writers are serialised by a lock file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import LakeFileError, NotFoundError, SchemaError
from core.tables import TABLES, TableSpec

logger = logging.getLogger(__name__)

_MANIFEST = "_manifest.json"
_LOCK = ".lock"


@dataclass(frozen=True)
class TableSummary:
    """Row count and time range of one lake table, as ``marquee data describe`` prints it."""

    name: str
    rows: int
    parts: int
    min_time: pd.Timestamp | None = None
    max_time: pd.Timestamp | None = None
    distinct: dict[str, int] | None = None


def _spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise NotFoundError(f"unknown lake table {name!r}; known tables: {', '.join(sorted(TABLES))}") from None


def to_arrow(spec: TableSpec, data: pd.DataFrame | pa.Table) -> pa.Table:
    """Validate ``data`` against ``spec`` and cast it to the table's exact schema.

    Missing optional columns are filled with nulls; missing required columns,
    unknown columns, nulls in required columns, uncastable values and duplicate
    primary keys raise ``SchemaError`` naming the column and how to fix it.
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    names = set(table.column_names)
    expected = set(spec.schema.names)
    unknown = sorted(names - expected)
    if unknown:
        raise SchemaError(f"table {spec.name!r}: unknown column(s) {unknown}; expected only {spec.schema.names}")
    missing_required = [c for c in spec.required if c not in names]
    if missing_required:
        raise SchemaError(f"table {spec.name!r}: missing required column(s) {missing_required}")
    columns = []
    for schema_field in spec.schema:
        if schema_field.name not in names:
            columns.append(pa.nulls(table.num_rows, type=schema_field.type))
            continue
        column = table.column(schema_field.name)
        try:
            columns.append(_cast(column, schema_field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SchemaError(
                f"table {spec.name!r}, column {schema_field.name!r}: cannot store {column.type} "
                f"as {schema_field.type} ({exc})"
            ) from exc
    result = pa.Table.from_arrays(columns, schema=spec.schema)
    for name in spec.required:
        nulls = result.column(name).null_count
        if nulls:
            raise SchemaError(f"table {spec.name!r}, column {name!r}: {nulls} null value(s) in a required column")
    _check_unique(spec, result)
    return result


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if column.type == target:
        return column
    if pa.types.is_timestamp(target) and pa.types.is_timestamp(column.type) and column.type.tz is None:
        # Naive timestamps in the lake are UTC by convention.
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return column.cast(target, safe=True)


def _check_unique(spec: TableSpec, table: pa.Table) -> None:
    if table.num_rows == 0:
        return
    keys = table.select(list(spec.primary_key))
    grouped = keys.group_by(list(spec.primary_key)).aggregate([])
    if grouped.num_rows != table.num_rows:
        duplicates = table.num_rows - grouped.num_rows
        raise SchemaError(
            f"table {spec.name!r}: {duplicates} duplicate primary key(s) on {list(spec.primary_key)}; "
            "each row must have a unique key"
        )


def _read_part(name: str, path: Path, columns: list[str] | None, schema: pa.Schema) -> pa.Table:
    """One data file of table ``name``; a file that cannot be read is named in the error (a corrupted lake file).

    Arrow's own message names the file only for some failures (a bad footer), not for a
    damaged page or a file listed but gone; the reader (export, popularity, training, the
    model server's catalog) logs this and keeps what it loaded before.
    """
    try:
        return pq.read_table(path, columns=columns, schema=schema)
    except (pa.ArrowException, OSError) as exc:
        raise LakeFileError(path, f"lake table {name!r}: cannot read this data file ({exc})") from exc


class Lake:
    """Read and write the lake tables under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def table_dir(self, name: str) -> Path:
        """Folder of one table."""
        return self.root / name

    def exists(self, name: str) -> bool:
        """Whether the table has been written at least once."""
        return (self.table_dir(name) / _MANIFEST).exists()

    def parts(self, name: str) -> list[Path]:
        """Parquet files that currently make up the table (empty if it does not exist)."""
        manifest = self.table_dir(name) / _MANIFEST
        if not manifest.exists():
            return []
        listed = json.loads(manifest.read_text())["parts"]
        return [self.table_dir(name) / part for part in listed]

    def write(
        self,
        name: str,
        data: pd.DataFrame | pa.Table,
        mode: Literal["overwrite", "append", "insert_new"] = "overwrite",
    ) -> int:
        """Validate and write ``data`` as table ``name``; return the rows written.

        ``overwrite`` replaces the table, ``append`` adds a part, ``insert_new``
        adds a part with only the rows whose primary key the table does not hold
        yet (what an at-least-once consumer needs: a redelivered batch writes
        nothing twice). Either way the switch is one atomic manifest replacement.
        """
        spec = _spec(name)
        table = to_arrow(spec, data)
        directory = self.table_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        with self._locked(directory):
            if mode == "insert_new":
                table = self._without_stored_keys(spec, table)
                if table.num_rows == 0:
                    return 0
            part = f"part-{uuid.uuid4().hex}.parquet"
            tmp = directory / f".{part}.tmp"
            try:
                pq.write_table(table, tmp, compression="zstd")
                os.replace(tmp, directory / part)
            finally:
                tmp.unlink(missing_ok=True)
            old = [p.name for p in self.parts(name)]
            new = [part] if mode == "overwrite" else [*old, part]
            self._write_manifest(directory, new)
            if mode == "overwrite":
                for stale in old:
                    (directory / stale).unlink(missing_ok=True)
        logger.info("lake: wrote %d rows to %s (%s)", table.num_rows, name, mode)
        return int(table.num_rows)

    def _without_stored_keys(self, spec: TableSpec, table: pa.Table) -> pa.Table:
        """Rows of ``table`` whose primary key is not stored yet (called under the table's lock)."""
        if not self.parts(spec.name) or table.num_rows == 0:
            return table
        keys = list(spec.primary_key)
        stored = self.read_arrow(spec.name, keys).group_by(keys).aggregate([])
        marked = stored.append_column("_stored", pa.array([True] * stored.num_rows))
        joined = table.join(marked, keys=keys, join_type="left outer")
        fresh = joined.filter(pa.compute.is_null(joined.column("_stored"))).drop_columns(["_stored"])
        return fresh.select(spec.schema.names).cast(spec.schema)

    def read_arrow(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The whole table as arrow, in the table's schema."""
        spec = _spec(name)
        parts = self.parts(name)
        if not parts:
            raise NotFoundError(
                f"lake table {name!r} is empty or missing under {self.root}; "
                "fill the lake first with `marquee data generate` or `marquee data load FORMAT PATH`"
            )
        schema = spec.schema if columns is None else pa.schema([spec.schema.field(c) for c in columns])
        return pa.concat_tables([_read_part(name, p, columns, schema) for p in parts])

    def read(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole table as a pandas DataFrame (timestamps are UTC)."""
        return self.read_arrow(name, columns).to_pandas()

    def read_or_empty(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Like ``read`` but an empty frame with the right columns when the table is missing."""
        if not self.exists(name):
            spec = _spec(name)
            schema = spec.schema if columns is None else pa.schema([spec.schema.field(c) for c in columns])
            return schema.empty_table().to_pandas()
        return self.read(name, columns)

    def delete_rows(self, name: str, column: str, values: set[str]) -> int:
        """Rewrite table ``name`` without the rows whose ``column`` is in ``values``.

        Used to erase an account's data (privacy); returns the rows removed.
        """
        if not self.exists(name):
            return 0
        table = self.read_arrow(name)
        mask = pa.compute.is_in(table.column(column), value_set=pa.array(sorted(values), pa.string()))
        removed = int(pa.compute.sum(mask).as_py() or 0)
        if removed:
            self.write(name, table.filter(pa.compute.invert(mask)), mode="overwrite")
        return removed

    def summary(self, name: str) -> TableSummary:
        """Counts and time range of one table."""
        spec = _spec(name)
        parts = self.parts(name)
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        summary = TableSummary(name=name, rows=rows, parts=len(parts))
        if not parts or rows == 0:
            return summary
        distinct: dict[str, int] = {}
        keys = {"watch_events": ["profile_id", "title_id"], "exposures": ["profile_id", "title_id"]}.get(name, [])
        min_time = max_time = None
        wanted = keys + ([spec.time_column] if spec.time_column else [])
        if wanted:
            table = self.read_arrow(name, wanted)
            for key in keys:
                distinct[key] = len(pa.compute.unique(table.column(key)))
            if spec.time_column:
                bounds = pa.compute.min_max(table.column(spec.time_column)).as_py()
                min_time, max_time = pd.Timestamp(bounds["min"]), pd.Timestamp(bounds["max"])
        return TableSummary(name, rows, len(parts), min_time, max_time, distinct or None)

    def describe(self) -> list[TableSummary]:
        """Summaries of every table that exists."""
        return [self.summary(name) for name in TABLES if self.exists(name)]

    @staticmethod
    def _write_manifest(directory: Path, parts: list[str]) -> None:
        tmp = directory / f".{_MANIFEST}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"parts": parts}))
        os.replace(tmp, directory / _MANIFEST)

    @staticmethod
    @contextmanager
    def _locked(directory: Path) -> Iterator[None]:
        with open(directory / _LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
