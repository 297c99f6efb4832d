"""Convert a lake of the old layout (parquet parts + ``_manifest.json`` per table) into Delta tables.

The old layout kept one parquet part per write and a manifest listing them. Each
table converts in one commit that writes every listed part's rows; the commit
carries a marker (``marquee.migrated_parts``), so a run stopped after the commit
but before the clean-up knows the rows are in and only removes the old files. The
parts stay on disk until their table's commit succeeded: running the migration
again after any failure is safe.

Rows are carried over as they are (only cast to the table's schema): the old
exporter could store an event twice after a crash, and a migration must not fail
on, or silently drop, what the old lake holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake

from core.errors import ConfigurationError
from core.lake import LEGACY_MANIFEST, Lake, conform
from core.tables import TABLES, TableSpec

logger = logging.getLogger(__name__)

#: Custom commit metadata that marks a table's migration commit.
MARKER = "marquee.migrated_parts"
#: Files of the old layout besides the parts.
_LEGACY_EXTRAS = (LEGACY_MANIFEST, ".lock")


@dataclass(frozen=True)
class MigratedTable:
    """What the migration did to one table."""

    name: str
    outcome: Literal["converted", "cleaned up", "already migrated", "already a table", "absent"]
    rows: int = 0
    parts: int = 0


def migrate_lake(source: Path, target: Lake) -> list[MigratedTable]:
    """Convert every old-layout table under ``source`` into a table of ``target``.

    ``target`` is usually the same folder (the default): the old parts are deleted once
    their table's commit succeeded. When ``target`` is elsewhere (an object store), the
    old folder is left as it was.
    """
    in_place = not target.remote and Path(target.root).resolve() == Path(source).resolve()
    return [_migrate_table(Path(source), TABLES[name], target, in_place) for name in TABLES]


def _migrate_table(source: Path, spec: TableSpec, target: Lake, in_place: bool) -> MigratedTable:
    folder = source / spec.name
    manifest = folder / LEGACY_MANIFEST
    if not manifest.exists():
        return MigratedTable(spec.name, "already a table" if target.exists(spec.name) else "absent")
    parts = [folder / name for name in json.loads(manifest.read_text())["parts"]]
    uri = target.table_uri(spec.name)
    options = target.storage_options or None
    if DeltaTable.is_deltatable(uri, storage_options=options):
        migrated = _migration_commit(DeltaTable(uri, storage_options=options))
        if migrated is None:
            raise ConfigurationError(
                f"lake table {spec.name!r} exists both as old parts and as a table not written by the migration; "
                f"keep one: move {folder} aside and run `marquee lake migrate` again"
            )
        if not in_place:
            return MigratedTable(spec.name, "already migrated", parts=len(parts))
        _remove_legacy(folder, parts)
        return MigratedTable(spec.name, "cleaned up", parts=len(parts))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    write_deltalake(
        uri,
        pa.RecordBatchReader.from_batches(spec.schema, _batches(parts, spec)),
        mode="overwrite",
        configuration=target.table_configuration(),
        storage_options=options,
        commit_properties=CommitProperties(custom_metadata={MARKER: str(len(parts))}),
    )
    if in_place:
        _remove_legacy(folder, parts)
    logger.info("lake migrate: %s, %d parts, %d rows", spec.name, len(parts), rows)
    return MigratedTable(spec.name, "converted", rows, len(parts))


def _batches(parts: list[Path], spec: TableSpec) -> Iterator[pa.RecordBatch]:
    """Every part's rows in the table's schema, one part at a time (the lake need not fit in memory)."""
    for part in parts:
        table = conform(pq.read_table(part), spec, None)
        yield from table.to_batches()


def _migration_commit(table: DeltaTable) -> int | None:
    """Version of the table's migration commit, if it has one."""
    for commit in table.history():
        if MARKER in commit:
            return int(commit["version"])
    return None


def _remove_legacy(folder: Path, parts: list[Path]) -> None:
    for part in parts:
        part.unlink(missing_ok=True)
    for name in _LEGACY_EXTRAS:
        (folder / name).unlink(missing_ok=True)
    for stale in folder.glob(".part-*.tmp"):
        stale.unlink(missing_ok=True)
