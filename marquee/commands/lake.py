"""`marquee lake`: upkeep of the lake's tables — compact, vacuum, migrate from the old layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marquee.commands._common import load_settings

lake_app = typer.Typer(help="The lake's tables: compact, migrate.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `lake` command group to the root CLI."""
    app.add_typer(lake_app, name="lake")


@lake_app.command("compact")
def compact_command(
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Table to compact (repeatable); default every table.")
    ] = None,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum/--no-vacuum", help="Also delete files and log entries older than the retention no snapshot needs."
        ),
    ] = True,
) -> None:
    """Rewrite each table's small files (one per export) into few large ones, then vacuum."""
    from core.errors import NotFoundError
    from core.lake import Lake
    from core.tables import TABLES

    lake = Lake.from_settings(load_settings())
    for name in table or []:
        if name not in TABLES:
            raise NotFoundError(f"unknown lake table {name!r}; known tables: {', '.join(sorted(TABLES))}")
    names = table or [name for name in TABLES if lake.exists(name)]
    if not names:
        typer.echo(f"the lake at {lake.root} has no tables yet")
        return
    for name in names:
        compacted = lake.compact(name)
        line = f"{name:<18} files {compacted.files_before:>5} → {compacted.files_after:>3}"
        if vacuum:
            line += f", {lake.vacuum(name).files_deleted} old files deleted"
        typer.echo(line)


@lake_app.command("migrate")
def migrate_command(
    lake_path: Annotated[
        Path | None,
        typer.Option("--lake", help="Folder of the old-layout lake; default the workspace's lake folder."),
    ] = None,
) -> None:
    """Convert a lake of parquet parts (a _manifest.json per table) into Delta tables; safe to run again.

    The tables are written where the lake is configured (``MARQUEE_LAKE_URI``, else the
    workspace folder). Converting in place deletes each table's old parts once its commit
    succeeded; converting into an object store leaves the old folder untouched.
    """
    from core.errors import NotFoundError
    from core.lake import Lake
    from core.lake_migrate import migrate_lake

    settings = load_settings()
    source = lake_path or settings.workspace.lake_dir
    if not source.is_dir():
        raise NotFoundError(f"no lake folder at {source}")
    target = Lake.from_settings(settings) if lake_path is None or settings.lake_uri else Lake(source)
    for table in migrate_lake(source, target):
        detail = f" ({table.rows:,} rows from {table.parts} parts)" if table.outcome == "converted" else ""
        typer.echo(f"{table.name:<18} {table.outcome}{detail}")
    typer.echo(f"lake tables at {target.root}")
