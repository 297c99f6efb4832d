"""``marquee evaluate``: the offline protocol (``temporal-user-80-20``) on a dataset, as a table and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("movielens", "movietweetings", "lake")


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to the root CLI."""
    app.command("evaluate")(evaluate)


def evaluate(
    path: Annotated[Path, typer.Argument(help="Dataset folder or file (ignored with --format lake).")],
    fmt: Annotated[str, typer.Option("--format", help="movielens | movietweetings | lake")] = "movielens",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models; popularity, ease and recency_ease always run.")
    ] = "",
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON report here.")] = None,
    tune: Annotated[bool, typer.Option("--tune/--no-tune", help="Tune hyper-parameters on validation.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the models that draw random numbers.")] = 0,
) -> None:
    """Run the protocol on a dataset: tune on validation, refit on train, score on test, print a table.

    Datasets are parsed in memory; the workspace's lake is never written.
    """
    from training.evaluation import DEFAULT_MODELS, check_model_names, evaluate_models, format_table

    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InvalidInputError(f"unknown --format {fmt!r}; use one of: {', '.join(FORMATS)}")
    chosen = [m.strip() for m in models.split(",") if m.strip()] or list(DEFAULT_MODELS)
    check_model_names(chosen)
    interactions, features, dataset = _load(name, path)
    report = evaluate_models(interactions, chosen, dataset=dataset, tune=tune, seed=seed, item_features=features)
    typer.echo(f"{report['protocol']} on {dataset}: {report['split']}")
    typer.echo(format_table(report))
    typer.echo(f"best: {report['best']} — {report['ratio']:.3f} × the best baseline ({report['best_baseline']})")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        typer.echo(f"report written to {out}")


def _load(fmt: str, path: Path) -> tuple[pd.DataFrame, dict[str, list[str]], str]:
    """Interactions of the dataset (protocol frame), title feature tokens, and a name for the report."""
    from training.evaluation import title_features
    from training.protocol import interactions_from_events

    if fmt == "lake":
        from core.lake import Lake
        from marquee.commands._common import load_settings

        lake = Lake(load_settings().workspace.lake_dir)
        events = lake.read_or_empty("watch_events")
        if events.empty:
            raise InvalidInputError("the workspace lake has no watch events; load a dataset first (marquee data ...)")
        return interactions_from_events(events), title_features(lake.read_or_empty("titles")), "lake"
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; give the dataset's folder or file")
    from features.ingest import read_dataset

    frames = read_dataset(fmt, path)
    return interactions_from_events(frames.watch_events), title_features(frames.titles), f"{fmt}:{path.name}"
