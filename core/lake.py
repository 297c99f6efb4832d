"""The lake: Delta Lake tables with explicit arrow schemas, validated on write.

Layout: ``<lake>/<table>/`` is one Delta table (``_delta_log/`` plus parquet data
files) on a local folder or an object store (``Settings.lake_uri``). Every change
is one commit to the table's log, so readers always see a whole snapshot and a
failure at any point leaves the previous one intact. Writers in several
processes (API workers, the event-bus consumer) append concurrently without a
lock: Delta's optimistic commit retries an append that lost a race.

Why Delta Lake and not Iceberg: docs/lake.md. In short, ``deltalake`` has
compaction, vacuum, row-level delete, merge (``insert_new``) and an incremental
change feed built in and needs no catalog (the table's log is its catalog);
``pyiceberg`` has no compaction and was several times slower per commit here.

Each export appends a small file; ``compact`` rewrites the small files into few
large ones and ``vacuum`` deletes the files no snapshot within the retention
needs, so the files per table stay bounded however many exports ran.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from core.errors import ConfigurationError, InvalidInputError, LakeFileError, NotFoundError, SchemaError
from core.tables import TABLES, TableSpec

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The old layout's table manifest (``marquee lake migrate`` converts such tables).
LEGACY_MANIFEST = "_manifest.json"
#: Commits that change no row a reader has not seen: an incremental read may step over them.
_NO_DATA_CHANGE = frozenset(
    {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "CREATE TABLE", "UPDATE TABLE METADATA"}
)
#: Attempts at a commit that conflicts with a concurrent one (an append never conflicts with an append).
_COMMIT_ATTEMPTS = 8
#: Back-off after the first conflict, doubled after each further one up to ``_BACKOFF_CAP_S`` (±50 % jitter).
_BACKOFF_FIRST_S = 0.05
_BACKOFF_CAP_S = 2.0


def _backoff_s(attempt: int) -> float:
    """The wait after conflicting attempt ``attempt`` (1-based): exponential, capped, jittered.

    Two writers merging into one table in a loop: a wait of a few tens of milliseconds (as
    before) was shorter than the other's merge, so on a loaded machine one writer lost eight
    times in a row and its write failed (a CI run). Doubling lets the winner's commit land first;
    the jitter keeps two losers from retrying in step. At most ~5 s over all attempts.
    """
    return random.uniform(0.5, 1.5) * min(_BACKOFF_CAP_S, _BACKOFF_FIRST_S * 2 ** (attempt - 1))


_WRITER = WriterProperties(compression="ZSTD")
#: Files below this size are rewritten by ``compact`` (Delta's default target is 100 MiB).
COMPACT_TARGET_BYTES = 128 * 1024 * 1024
DEFAULT_RETENTION_HOURS = 24.0


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


def to_arrow(spec: TableSpec, data: pd.DataFrame | pa.Table, keys_unique: bool = False) -> pa.Table:
    """Validate ``data`` against ``spec`` and cast it to the table's exact schema.

    Missing optional columns are filled with nulls; missing required columns,
    unknown columns, nulls in required columns, uncastable values and duplicate
    primary keys raise ``SchemaError`` naming the column and how to fix it.
    ``keys_unique=True`` skips the last check only (see ``Lake.write``).
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
    if not keys_unique:
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
    # One thread: a writer (the API's exposure flush) shares its cores with the requests it runs beside,
    # and Arrow's thread pool cost a quarter more CPU here than the same group-by on one thread.
    grouped = keys.group_by(list(spec.primary_key), use_threads=False).aggregate([])
    if grouped.num_rows != table.num_rows:
        duplicates = table.num_rows - grouped.num_rows
        raise SchemaError(
            f"table {spec.name!r}: {duplicates} duplicate primary key(s) on {list(spec.primary_key)}; "
            "each row must have a unique key"
        )


def _snapshot_rows(
    name: str, table: DeltaTable, columns: list[str] | None, where: pc.Expression | None = None
) -> pa.Table:
    """The rows of ``table``'s snapshot (those matching ``where``); a data file that cannot be read is named.

    ``where`` is applied while the files are scanned, batch by batch, so a reader that
    wants a few profiles' rows never holds the whole table in memory.

    Arrow's own message names the file only for some failures (a bad footer), not for a
    damaged page or a file listed but gone; the reader (export, popularity, training, the
    model server's catalog) logs this and keeps what it loaded before.
    """
    dataset = table.to_pyarrow_dataset()
    try:
        return dataset.to_table(columns=columns, filter=where)
    except (pa.ArrowException, OSError) as exc:
        for path in dataset.files:
            try:
                pq.read_table(path, columns=columns, filesystem=dataset.filesystem)
            except (pa.ArrowException, OSError) as file_exc:
                uri = next((uri for uri in table.file_uris() if uri.endswith(path)), path)
                raise LakeFileError(uri, f"lake table {name!r}: cannot read this data file ({file_exc})") from exc
        raise LakeFileError(table.table_uri, f"lake table {name!r}: cannot read its snapshot ({exc})") from exc


@dataclass(frozen=True)
class Increment:
    """What ``Lake.read_since`` returns: rows, the version they bring the reader to, and how to apply them.

    ``full``: ``rows`` is the whole table at ``version`` (first read, or rows were deleted or
    replaced since the reader's version): the reader replaces what it holds. Otherwise ``rows``
    are only the rows appended after the reader's version: the reader adds them.
    """

    rows: pa.Table
    version: int
    full: bool


@dataclass(frozen=True)
class MaintenanceReport:
    """What ``Lake.compact`` / ``Lake.vacuum`` did to one table."""

    name: str
    files_before: int
    files_after: int
    files_deleted: int = 0


class Lake:
    """Read and write the lake tables under ``root`` (a folder, or an object-store URI).

    Args:
        root: the lake's folder or URI (``s3://bucket/lake``); each table is ``<root>/<table>``.
        storage_options: the object store's options (credentials, endpoint), passed to Delta Lake.
        retention_hours: how long ``vacuum`` keeps files and log entries that no current snapshot uses.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        storage_options: Mapping[str, str] | None = None,
        retention_hours: float = DEFAULT_RETENTION_HOURS,
    ) -> None:
        self.remote = isinstance(root, str) and "://" in root
        self.root: Path | str = root.rstrip("/") if isinstance(root, str) and self.remote else Path(root)
        self.storage_options = dict(storage_options or {})
        self.retention_hours = retention_hours

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        """The lake every process of ``settings`` shares (``lake_uri``, else the workspace folder)."""
        return cls(
            settings.lake_location,
            storage_options=settings.lake_storage_options,
            retention_hours=settings.lake_retention_hours,
        )

    # ------------------------------------------------------------------ where

    def table_uri(self, name: str) -> str:
        """Location of one table, as Delta Lake takes it."""
        _spec(name)
        return f"{self.root}/{name}" if self.remote else str(Path(self.root) / name)

    def table_dir(self, name: str) -> Path:
        """Folder of one table (a local lake only)."""
        if self.remote:
            raise ConfigurationError(f"the lake at {self.root} is an object store: table {name!r} has no folder")
        return Path(self.root) / name

    def _open(self, name: str, version: int | None = None) -> DeltaTable | None:
        """The table's current (or ``version``) snapshot; ``None`` when it was never written."""
        self._refuse_legacy(name)
        try:
            return DeltaTable(self.table_uri(name), version=version, storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def _require(self, name: str) -> DeltaTable:
        table = self._open(name)
        if table is None:
            raise NotFoundError(
                f"lake table {name!r} is empty or missing under {self.root}; "
                "fill the lake first with `marquee data generate` or `marquee data load FORMAT PATH`"
            )
        return table

    def is_legacy(self, name: str) -> bool:
        """Whether table ``name`` is still in the old parquet-parts layout (``marquee lake migrate`` converts it)."""
        if self.remote:
            return False
        folder = Path(self.root) / name
        return (folder / LEGACY_MANIFEST).exists() and not (folder / "_delta_log").exists()

    def _refuse_legacy(self, name: str) -> None:
        if self.is_legacy(name):
            raise ConfigurationError(
                f"lake table {name!r} under {self.root} is in the old parquet-parts layout; "
                "convert the lake with `marquee lake migrate` (the old parts are kept until it succeeds)"
            )

    # ------------------------------------------------------------------ state

    def exists(self, name: str) -> bool:
        """Whether the table has been written at least once."""
        self._refuse_legacy(name)
        return bool(DeltaTable.is_deltatable(self.table_uri(name), storage_options=self.storage_options or None))

    def version(self, name: str) -> int | None:
        """The table's current version (``None``: never written); each commit adds one."""
        table = self._open(name)
        return None if table is None else int(table.version())

    def parts(self, name: str) -> list[str]:
        """Data files of the table's current snapshot (empty if it does not exist).

        Any parquet reader (DuckDB, Spark) reading exactly these files reads the current snapshot.
        """
        table = self._open(name)
        return [] if table is None else list(table.file_uris())

    # ------------------------------------------------------------------ writing

    def write(
        self,
        name: str,
        data: pd.DataFrame | pa.Table,
        mode: Literal["overwrite", "append", "insert_new"] = "overwrite",
        keys_unique: bool = False,
    ) -> int:
        """Validate and write ``data`` as table ``name`` in one commit; return the rows written.

        ``overwrite`` replaces the table, ``append`` adds a file, ``insert_new``
        adds only the rows whose primary key the table does not hold yet (what an
        at-least-once consumer needs: a redelivered batch writes nothing twice).

        ``keys_unique=True`` is for a writer whose rows have distinct keys by
        construction and that checked it itself, cheaply (the API's exposure flush:
        one segment per page, arm and row, positions from a range). The lake's own
        check is a group-by over every key column; on the exposures' four columns it
        was 70 % of the flush, about 5 % of an API worker's CPU. Every other check
        (columns, types, required values) still runs.
        """
        if mode not in ("overwrite", "append", "insert_new"):
            raise InvalidInputError(f"lake write mode must be overwrite, append or insert_new, got {mode!r}")
        spec = _spec(name)
        self._refuse_legacy(name)  # a table written beside old parts would hide them
        table = to_arrow(spec, data, keys_unique=keys_unique)
        if mode == "insert_new":
            written = self._retry(lambda: self._insert_new(spec, table), f"insert into {name}")
        else:
            self._retry(lambda: self._write(spec, table, mode), f"{mode} {name}")
            written = table.num_rows
        logger.info("lake: wrote %d rows to %s (%s)", written, name, mode)
        return int(written)

    def _write(self, spec: TableSpec, table: pa.Table, mode: Literal["overwrite", "append"]) -> None:
        write_deltalake(
            self.table_uri(spec.name),
            table,
            mode=mode,
            # A column added to the spec later joins the table (older files read it as null).
            schema_mode="overwrite" if mode == "overwrite" else "merge",
            configuration=self.table_configuration(),
            writer_properties=_WRITER,
            storage_options=self.storage_options or None,
        )

    def _insert_new(self, spec: TableSpec, table: pa.Table) -> int:
        """Merge ``table`` into the table, inserting only keys not stored yet (one commit, or none)."""
        current = self._open(spec.name)
        if current is None:
            self._write(spec, table, "append")
            return int(table.num_rows)
        if table.num_rows == 0:
            return 0
        # Keys may hold nulls (an exposure outside experiments): NULL matches NULL here.
        predicate = " AND ".join(f'(t."{key}" IS NOT DISTINCT FROM s."{key}")' for key in spec.primary_key)
        metrics = (
            current.merge(table, predicate=predicate, source_alias="s", target_alias="t", writer_properties=_WRITER)
            .when_not_matched_insert_all()
            .execute()
        )
        return int(metrics.get("num_target_rows_inserted", 0))

    def table_configuration(self) -> dict[str, str]:
        """Table properties set when a table is created: how long old files and log entries stay."""
        hours = max(1, round(self.retention_hours))
        return {
            "delta.logRetentionDuration": f"interval {hours} hours",
            "delta.deletedFileRetentionDuration": f"interval {hours} hours",
        }

    def delete_rows(self, name: str, column: str, values: Iterable[str]) -> int:
        """Delete the rows whose ``column`` is in ``values`` from the current snapshot; return how many.

        A row-level delete (the files holding such rows are rewritten without them, in
        one commit). Used to erase a person's data; the old files leave the disk at the
        next ``vacuum`` after the retention.
        """
        spec = _spec(name)
        if column not in spec.schema.names:
            raise InvalidInputError(f"table {name!r} has no column {column!r}; columns: {spec.schema.names}")
        wanted = sorted({str(v) for v in values})
        if not wanted or not self.exists(name):
            return 0
        keys = pa.table({column: pa.array(wanted, spec.schema.field(column).type)})

        def delete() -> int:
            metrics = (
                self._require(name)
                .merge(keys, predicate=f't."{column}" = s."{column}"', source_alias="s", target_alias="t")
                .when_matched_delete()
                .execute()
            )
            return int(metrics.get("num_target_rows_deleted", 0))

        removed = self._retry(delete, f"delete from {name}")
        if removed:
            logger.info("lake: deleted %d rows from %s", removed, name)
        return removed

    def erase(self, subjects: Mapping[str, Iterable[str]]) -> dict[str, int]:
        """Delete every row about these people from every table that holds such rows.

        ``subjects`` maps a subject column (``account_id``, ``profile_id``) to the ids to erase;
        each table's ``TableSpec.subject_column`` says which applies. Returns rows deleted per table.
        """
        removed: dict[str, int] = {}
        for spec in TABLES.values():
            if spec.subject_column is not None and spec.subject_column in subjects:
                ids = set(subjects[spec.subject_column])
                if ids:
                    removed[spec.name] = self.delete_rows(spec.name, spec.subject_column, ids)
        return removed

    # ------------------------------------------------------------------ maintenance

    def compact(self, name: str) -> MaintenanceReport:
        """Rewrite the table's small files into few large ones (one commit that changes no row)."""
        table = self._open(name)
        if table is None:
            return MaintenanceReport(name, 0, 0)
        before = len(table.file_uris())
        self._retry(
            lambda: self._require(name).optimize.compact(target_size=COMPACT_TARGET_BYTES, writer_properties=_WRITER),
            f"compact {name}",
        )
        after = len(self._require(name).file_uris())
        logger.info("lake: compacted %s from %d to %d files", name, before, after)
        return MaintenanceReport(name, before, after)

    def vacuum(self, name: str, retention_hours: float | None = None) -> MaintenanceReport:
        """Delete files no snapshot younger than the retention uses, and log entries older than it.

        After this, versions older than the retention can no longer be read (an incremental
        reader that far behind reads the whole table again, see ``read_since``).
        """
        table = self._open(name)
        if table is None:
            return MaintenanceReport(name, 0, 0)
        hours = self.retention_hours if retention_hours is None else retention_hours
        deleted = table.vacuum(retention_hours=int(hours), dry_run=False, enforce_retention_duration=False)
        table = self._require(name)
        table.create_checkpoint()
        table.cleanup_metadata()
        files = len(table.file_uris())
        return MaintenanceReport(name, files, files, len(deleted))

    def maintain(self, names: Iterable[str] | None = None) -> list[MaintenanceReport]:
        """Compact then vacuum each table (every existing one by default): the scheduled upkeep."""
        reports = []
        for name in names if names is not None else [n for n in TABLES if self.exists(n)]:
            compacted = self.compact(name)
            vacuumed = self.vacuum(name)
            reports.append(
                MaintenanceReport(name, compacted.files_before, compacted.files_after, vacuumed.files_deleted)
            )
        return reports

    # ------------------------------------------------------------------ reading

    def read_arrow(
        self,
        name: str,
        columns: list[str] | None = None,
        version: int | None = None,
        where: pc.Expression | None = None,
    ) -> pa.Table:
        """The table (its current snapshot, or ``version``) as arrow, in the table's schema.

        ``where`` (a ``pyarrow.dataset`` expression on the stored columns) keeps only the
        matching rows, filtered during the scan: the memory a reader needs follows what it
        asks for, not the size of the table.
        """
        spec = _spec(name)
        table = self._require(name) if version is None else self._open(name, version)
        if table is None:
            raise NotFoundError(f"lake table {name!r} has no version {version}")
        return conform(_snapshot_rows(name, table, columns, where), spec, columns)

    def read(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole table as a pandas DataFrame (timestamps are UTC)."""
        return self.read_arrow(name, columns).to_pandas()

    def read_or_empty(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Like ``read`` but an empty frame with the right columns when the table is missing."""
        if not self.exists(name):
            return _subschema(_spec(name), columns).empty_table().to_pandas()
        return self.read(name, columns)

    def read_since(self, name: str, version: int | None, columns: list[str] | None = None) -> Increment:
        """The rows appended to ``name`` after ``version`` (the one a previous call returned).

        A reader that keeps what it read and calls this periodically reads each row once:
        its cost follows the new rows, not the table or the number of exports. When rows
        were deleted or replaced since ``version`` (erasure, an overwrite), or that version
        was vacuumed away, the answer is the whole table with ``full=True``. Compaction
        changes no row and is stepped over. A missing table is an empty full answer.
        """
        spec = _spec(name)
        table = self._open(name)
        if table is None:
            return Increment(_subschema(spec, columns).empty_table(), -1, full=True)
        current = int(table.version())
        if version is None or version < 0 or version > current:
            return self._full(table, spec, columns, current)
        if version == current:
            return Increment(_subschema(spec, columns).empty_table(), current, full=False)
        commits = table.history(limit=current - version)
        if len(commits) < current - version or not all(_appends_only(commit) for commit in commits):
            return self._full(table, spec, columns, current)
        wanted = None if columns is None else [*columns, "_change_type"]
        try:
            changes = pa.RecordBatchReader.from_stream(
                table.load_cdf(starting_version=version + 1, ending_version=current, columns=wanted)
            ).read_all()
        except (DeltaError, OSError, pa.ArrowException) as exc:  # files or log entries of that range were vacuumed
            logger.info("lake: %s has no change feed from version %d (%s); reading it whole", name, version, exc)
            return self._full(table, spec, columns, current)
        inserted = pc.equal(changes.column("_change_type").cast(pa.string()), "insert")
        return Increment(conform(changes, spec, columns).filter(inserted), current, full=False)

    @staticmethod
    def _full(table: DeltaTable, spec: TableSpec, columns: list[str] | None, version: int) -> Increment:
        rows = conform(_snapshot_rows(spec.name, table, columns), spec, columns)
        return Increment(rows, version, full=True)

    def summary(self, name: str) -> TableSummary:
        """Counts and time range of one table."""
        spec = _spec(name)
        table = self._open(name)
        if table is None:
            return TableSummary(name=name, rows=0, parts=0)
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = int(pc.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0
        summary = TableSummary(name=name, rows=rows, parts=actions.num_rows)
        if rows == 0:
            return summary
        distinct: dict[str, int] = {}
        keys = {"watch_events": ["profile_id", "title_id"], "exposures": ["profile_id", "title_id"]}.get(name, [])
        min_time = max_time = None
        wanted = keys + ([spec.time_column] if spec.time_column else [])
        if wanted:
            data = self.read_arrow(name, wanted)
            for key in keys:
                distinct[key] = len(pc.unique(data.column(key)))
            if spec.time_column:
                bounds = pc.min_max(data.column(spec.time_column)).as_py()
                min_time, max_time = pd.Timestamp(bounds["min"]), pd.Timestamp(bounds["max"])
        return TableSummary(name, rows, actions.num_rows, min_time, max_time, distinct or None)

    def describe(self) -> list[TableSummary]:
        """Summaries of every table that exists."""
        return [self.summary(name) for name in TABLES if self.exists(name)]

    # ------------------------------------------------------------------ commits

    @staticmethod
    def _retry(commit: Callable[[], T], what: str) -> T:
        """Run ``commit``, again after a conflict with a concurrent commit (jittered back-off)."""
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                return commit()
            except (CommitFailedError, DeltaError) as exc:
                if attempt == _COMMIT_ATTEMPTS or not _is_conflict(exc):
                    raise
                logger.info("lake: %s conflicted with a concurrent commit (attempt %d): %s", what, attempt, exc)
                time.sleep(_backoff_s(attempt))
        raise AssertionError("unreachable")


def _is_conflict(exc: Exception) -> bool:
    """Whether a Delta error is a lost commit race (worth retrying) rather than a real failure."""
    text = str(exc).lower()
    return isinstance(exc, CommitFailedError) or any(
        word in text for word in ("conflict", "concurrent", "already exists", "version mismatch")
    )


def _appends_only(commit: Mapping[str, Any]) -> bool:
    """Whether a commit (a ``DeltaTable.history`` entry) only added rows or changed none."""
    operation = str(commit.get("operation", ""))
    metrics = commit.get("operationMetrics") or {}
    if operation in _NO_DATA_CHANGE:
        return True
    if operation == "WRITE":
        return (commit.get("operationParameters") or {}).get("mode") == "Append"
    if operation == "MERGE":
        return not any(int(metrics.get(k, 0) or 0) for k in ("num_target_rows_deleted", "num_target_rows_updated"))
    if operation == "DELETE":
        return int(metrics.get("num_deleted_rows", 0) or 0) == 0
    return False


def _subschema(spec: TableSpec, columns: list[str] | None) -> pa.Schema:
    if columns is None:
        return spec.schema
    unknown = [c for c in columns if c not in spec.schema.names]
    if unknown:
        raise InvalidInputError(f"table {spec.name!r} has no column(s) {unknown}; columns: {spec.schema.names}")
    return pa.schema([spec.schema.field(c) for c in columns])


def conform(table: pa.Table, spec: TableSpec, columns: list[str] | None) -> pa.Table:
    """``table`` (as Delta hands it back: microsecond timestamps, string views) in the table's own schema."""
    schema = _subschema(spec, columns)
    arrays = []
    for schema_field in schema:
        if schema_field.name in table.column_names:
            arrays.append(table.column(schema_field.name).cast(schema_field.type))
        else:  # a column added to the spec after these files were written
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, schema_field.type)]))
    return pa.Table.from_arrays(arrays, schema=schema)
