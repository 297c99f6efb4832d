"""`marquee data`: fill the lake from the synthetic generator or a public dataset, and describe it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marquee.commands._common import load_settings

if TYPE_CHECKING:
    from core.lake import Lake, TableSummary
    from core.settings import Settings
    from features.ingest.frames import IngestReport

data_app = typer.Typer(help="Datasets into the lake: generate, load, describe.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the root CLI."""
    app.add_typer(data_app, name="data")


@data_app.command("generate")
def generate_command(
    scale: Annotated[float, typer.Option(help="Size knob: 1.0 = 5k titles, 20k profiles, 1M events.")] = 1.0,
    titles: Annotated[int | None, typer.Option(help="Catalog size (overrides --scale).")] = None,
    profiles: Annotated[int | None, typer.Option(help="Profiles (overrides --scale).")] = None,
    events: Annotated[int | None, typer.Option(help="Watch events (overrides --scale).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: MARQUEE_SEED, 42).")] = None,
) -> None:
    """Generate a synthetic streaming service and replace the lake's dataset tables with it."""
    from features.ingest.synthetic import SyntheticConfig, generate_frames

    settings = load_settings()
    config = SyntheticConfig(
        seed=settings.seed if seed is None else seed,
        scale=scale,
        n_titles=titles,
        n_profiles=profiles,
        n_events=events,
        show_progress=True,
    )
    typer.echo(
        f"generating {config.titles:,} titles, {config.profiles:,} profiles, "
        f"{config.events:,} events (seed {config.seed})",
        err=True,
    )
    report = _ingest(settings, lambda: generate_frames(config), None)
    _print_report(report)


@data_app.command("load")
def load_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="movielens | movietweetings | netflix | synthetic")],
    path: Annotated[
        Path | None, typer.Argument(help="The dataset's folder or file (not needed for synthetic).")
    ] = None,
    history: Annotated[
        bool, typer.Option("--history/--no-history", help="netflix: generate synthetic watch history over the catalog.")
    ] = False,
    scale: Annotated[float, typer.Option(help="Size of generated history (synthetic, netflix --history).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed of generated data (default: MARQUEE_SEED, 42).")] = None,
) -> None:
    """Load a dataset into the lake, replacing titles, episodes, accounts, profiles and watch events."""
    from core.errors import InvalidInputError
    from features.ingest import FORMATS, read_dataset
    from features.ingest.synthetic import SyntheticConfig

    settings = load_settings()
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InvalidInputError(f"unknown dataset format {fmt!r}; use one of: {', '.join(FORMATS)}")
    config = SyntheticConfig(seed=settings.seed if seed is None else seed, scale=scale, show_progress=True)
    if name == "synthetic":
        from features.ingest.synthetic import generate_frames

        report = _ingest(settings, lambda: generate_frames(config), None)
    elif name == "netflix" and history:
        from features.ingest.netflix import read_netflix_titles

        report = _ingest(settings, lambda: read_netflix_titles(_need(path, name), config), path)
    else:
        report = _ingest(settings, lambda: read_dataset(name, _need(path, name)), path)
    _print_report(report)


@data_app.command("describe")
def describe_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print each lake table's row count and time range, and who and what the watch events cover."""
    from core.lake import Lake

    lake = Lake.from_settings(load_settings())
    summaries = lake.describe()
    if as_json:
        typer.echo(json.dumps([_summary_dict(lake, s) for s in summaries], indent=2))
        return
    if not summaries:
        typer.echo(
            f"the lake at {lake.root} is empty; fill it with `marquee data generate` or `marquee data load FORMAT PATH`"
        )
        return
    typer.echo(describe_text(lake, summaries))


def describe_text(lake: Lake, summaries: list[TableSummary]) -> str:
    """The human-readable table ``marquee data describe`` prints (also used by ``marquee demo``)."""
    lines = [f"{'table':<14}{'rows':>12}  {'from':<17} {'to':<17} {'time column'}"]
    for s in summaries:
        column, low, high = _time_range(lake, s)
        first = low.strftime("%Y-%m-%d %H:%M") if low is not None else ""
        last = high.strftime("%Y-%m-%d %H:%M") if high is not None else ""
        lines.append(f"{s.name:<14}{s.rows:>12,}  {first:<17} {last:<17} {column if low is not None else ''}".rstrip())
    by_name = {s.name: s for s in summaries}
    events = by_name.get("watch_events")
    if events is not None and events.rows:
        distinct = events.distinct or {}
        titles = by_name.get("titles")
        lines.append(
            f"interactions: {events.rows:,} · users (profiles with events): {distinct.get('profile_id', 0):,} · "
            f"titles: {titles.rows if titles else 0:,} (distinct title ids in events: {distinct.get('title_id', 0):,})"
        )
    return "\n".join(lines)


#: Tables without a ``time_column`` whose date range is still worth showing.
_DATE_COLUMNS = {"titles": "date_added", "accounts": "created_at", "profiles": "created_at"}


def _time_range(lake: Lake, summary: TableSummary) -> tuple[str, Any, Any]:
    """(column, min, max) of the table's time column, or of its date column for catalog tables."""
    from core.tables import TABLES

    spec_column = TABLES[summary.name].time_column
    if spec_column:
        return spec_column, summary.min_time, summary.max_time
    column = _DATE_COLUMNS.get(summary.name)
    if column is None or summary.rows == 0:
        return "", None, None
    values = lake.read(summary.name, [column])[column].dropna()
    if values.empty:
        return column, None, None
    return column, values.min(), values.max()


def _need(path: Path | None, fmt: str) -> Path:
    from core.errors import InvalidInputError

    if path is None:
        raise InvalidInputError(f"`marquee data load {fmt} PATH` needs the dataset's folder or file")
    return path


def _ingest(settings: Settings, read: Any, path: Path | None) -> IngestReport:
    """Parse (or generate), then validate and write, with a progress bar over the two steps."""
    import time

    from tqdm.auto import tqdm

    from core.lake import Lake
    from features.ingest.frames import write_frames

    started = time.perf_counter()
    with tqdm(total=2, desc="parse", unit="step", leave=False) as bar:
        frames = read()
        bar.set_description("validate + write")
        bar.update(1)
        lake = Lake.from_settings(settings)
        report = write_frames(lake, frames, started=started, path=None if path is None else str(path))
        bar.update(1)
    return report


def _print_report(report: IngestReport) -> None:
    counts = ", ".join(f"{name} {rows:,}" for name, rows in report.rows.items())
    typer.echo(f"{report.source}: wrote {counts} in {report.seconds:.1f} s")
    for note in report.notes:
        typer.echo(f"note: {note}")


def _summary_dict(lake: Lake, summary: TableSummary) -> dict[str, Any]:
    column, low, high = _time_range(lake, summary)
    return {
        "table": summary.name,
        "rows": summary.rows,
        "parts": summary.parts,
        "time_column": column or None,
        "min_time": low.isoformat() if low is not None else None,
        "max_time": high.isoformat() if high is not None else None,
        "distinct": summary.distinct or {},
    }
