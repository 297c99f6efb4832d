"""``marquee evaluate``: the offline protocol (``temporal-user-80-20``) on a dataset, as a table and JSON."""

from __future__ import annotations

import json
import os
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
    if out is not None:
        _check_writable(out)  # before a run that may take many minutes, not after it
    interactions, features, dataset = _load(name, path)
    from features.spark.session import session_for
    from marquee.commands._common import load_settings

    spark = session_for(load_settings(), chosen)
    report = evaluate_models(
        interactions, chosen, dataset=dataset, tune=tune, seed=seed, item_features=features, spark=spark
    )
    typer.echo(f"{report['protocol']} on {dataset}: {report['split']}")
    for skipped, reason in report.get("skipped", {}).items():
        typer.echo(f"skipped {skipped}: {reason}")
    typer.echo(format_table(report))
    if report["ratio"] is None:
        typer.echo(f"only baselines ran; the best is {report['best_baseline']}")
    else:
        typer.echo(f"best: {report['best']} — {report['ratio']:.3f} × the best baseline ({report['best_baseline']})")
    if out is not None:
        try:
            out.write_text(json.dumps(report, indent=2))
        except OSError as exc:
            raise InvalidInputError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
        typer.echo(f"report written to {out}")


def _check_writable(out: Path) -> None:
    """A clear error now if ``--out`` cannot be written (a folder, or a folder that cannot be made)."""
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a folder; give a file name such as {out / 'report.json'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InvalidInputError(f"cannot write the report to {out}: permission denied")


def _load(fmt: str, path: Path) -> tuple[pd.DataFrame, dict[str, list[str]], str]:
    """Interactions of the dataset (protocol frame), title feature tokens, and a name for the report."""
    from training.evaluation import title_features
    from training.protocol import interactions_from_events

    if fmt == "lake":
        from core.lake import Lake
        from marquee.commands._common import load_settings

        lake = Lake.from_settings(load_settings())
        events = lake.read_or_empty("watch_events")
        if events.empty:
            raise InvalidInputError("the workspace lake has no watch events; load a dataset first (marquee data ...)")
        return interactions_from_events(events), title_features(lake.read_or_empty("titles")), "lake"
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; give the dataset's folder or file")
    from features.ingest import read_dataset

    try:
        frames = read_dataset(fmt, path)
    except OSError as exc:  # unreadable file or folder: say which, without a traceback
        raise InvalidInputError(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from None
    folder = path.resolve() if path.is_dir() else path.resolve().parent
    return interactions_from_events(frames.watch_events), title_features(frames.titles), f"{fmt}:{folder.name}"
