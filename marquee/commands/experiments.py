"""`marquee experiments` commands: validate, list, assign, status, analyze."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import NotFoundError

if TYPE_CHECKING:
    from experiments.definitions import Experiment

PathOption = Annotated[
    Path | None,
    typer.Option(
        "--path",
        help="folder or YAML file of definitions (default: MARQUEE_EXPERIMENTS_DIR, else the shipped definitions)",
    ),
]


def _definitions_path(path: Path | None) -> Path:
    from core.settings import Settings
    from experiments.definitions import DEFAULT_DIR

    if path is not None:
        return path
    return Settings().experiments_dir or DEFAULT_DIR


def _find(experiments: list[Experiment], key: str, where: Path) -> Experiment:
    for experiment in experiments:
        if experiment.key == key:
            return experiment
    known = ", ".join(sorted(e.key for e in experiments)) or "none"
    raise NotFoundError(f"no experiment {key!r} in {where}; known keys: {known}")


def validate(path: Annotated[Path, typer.Argument(help="a YAML file or a folder of them")]) -> None:
    """Check definitions one by one and together; exit non-zero with the reason when invalid."""
    from experiments.definitions import load_experiments

    experiments = load_experiments(path)
    keys = ", ".join(f"{e.key} ({e.status})" for e in experiments)
    typer.echo(f"ok: {len(experiments)} valid definition(s) in {path}" + (f": {keys}" if keys else ""))


def list_(
    path: PathOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the definitions: key, layer, status, allocation and variants."""
    from experiments.definitions import load_experiments

    experiments = sorted(load_experiments(_definitions_path(path)), key=lambda e: (e.layer, e.key))
    rows = [
        {
            "key": e.key,
            "layer": e.layer,
            "status": str(e.status),
            "allocation": e.allocation,
            "variants": [{"name": v.name, "weight": v.weight} for v in e.variants],
        }
        for e in experiments
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'key':<28} {'layer':<12} {'status':<8} {'alloc':>6}  variants")
    for row in rows:
        variants = ", ".join(f"{v['name']} {v['weight']:g}%" for v in row["variants"])  # type: ignore[attr-defined]
        typer.echo(f"{row['key']:<28} {row['layer']:<12} {row['status']:<8} {row['allocation']:>5g}%  {variants}")


def assign(
    key: Annotated[str, typer.Argument(help="experiment key")],
    unit_ids: Annotated[list[str], typer.Argument(help="unit ids (profile or account ids)")],
    path: PathOption = None,
) -> None:
    """Print `unit<TAB>variant` per unit (`-` when outside the experiment or in a global holdout).

    Uses the traffic range, forced assignments and global holdouts; not the
    status, dates or targeting (those need a request).
    """
    from experiments.assignment import assign_many, global_holdouts
    from experiments.definitions import load_experiments

    where = _definitions_path(path)
    experiments = load_experiments(where)
    experiment = _find(experiments, key, where)
    holdouts = [h for h in global_holdouts(experiments) if h.key != key and h.unit == experiment.unit]
    for unit_id, variant in zip(unit_ids, assign_many(experiment, unit_ids, holdouts), strict=True):
        typer.echo(f"{unit_id}\t{variant if variant is not None else '-'}")


def status(
    key: Annotated[str, typer.Argument(help="experiment key")],
    new_status: Annotated[str, typer.Argument(metavar="STATUS", help="draft, running or stopped")],
    path: PathOption = None,
) -> None:
    """Change an experiment's status (checked against the other definitions first)."""
    from core.errors import InvalidInputError
    from experiments.definitions import Status
    from experiments.store import ExperimentStore

    if new_status not in {s.value for s in Status}:
        raise InvalidInputError(f"status must be one of draft, running, stopped; got {new_status!r}")
    where = _definitions_path(path)
    if not where.is_dir():
        raise InvalidInputError(f"--path must be a folder of definitions to change a status, got {where}")
    experiment = ExperimentStore(where).set_status(key, new_status)
    typer.echo(f"{experiment.key}: {experiment.status}")


def analyze(
    key: Annotated[str, typer.Argument(help="experiment key")],
    out: Annotated[Path, typer.Option("--out", help="where to write the JSON report")],
    path: PathOption = None,
    pre_period_days: Annotated[float, typer.Option(help="CUPED pre-period before each unit's first exposure")] = 14,
    markdown: Annotated[Path | None, typer.Option(help="also write a markdown report (plot beside it)")] = None,
    html: Annotated[Path | None, typer.Option(help="also write a self-contained HTML report")] = None,
    fail_on_breach: Annotated[
        bool, typer.Option("--fail-on-breach", help="exit with status 3 when a guardrail is breached")
    ] = False,
) -> None:
    """Analyse an experiment from the workspace lake's exposures, watch events and playback reports."""
    from core.lake import Lake
    from experiments.analysis import analyze as run_analysis
    from experiments.definitions import load_experiments
    from experiments.exposures import read_exposures
    from experiments.report import write_report_html, write_report_markdown
    from marquee.commands._common import load_settings

    settings = load_settings()
    where = _definitions_path(path)
    experiment = _find(load_experiments(where), key, where)
    lake = Lake.from_settings(settings)
    exposures = read_exposures(lake, key)
    events = lake.read_or_empty("watch_events")
    profiles = lake.read_or_empty("profiles", ["profile_id", "account_id"]) if experiment.unit == "account" else None
    playback = lake.read_or_empty("playback_reports")
    report = run_analysis(experiment, exposures, events, pre_period_days, profiles_df=profiles, playback_df=playback)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json(), encoding="utf-8")
    written = [str(out)]
    if markdown is not None:
        written.append(str(write_report_markdown(report, markdown)))
    if html is not None:
        written.append(str(write_report_html(report, html)))
    primary = [r for r in report.results if r.metric == report.primary_metric]
    for row in primary:
        typer.echo(
            f"{row.variant} vs {row.control}: {row.metric} lift {row.lift * 100:+.2f}% "
            f"[{row.lift_ci[0] * 100:+.2f}%, {row.lift_ci[1] * 100:+.2f}%], p={row.p_value:.3g}, "
            f"CUPED p={row.cuped_p_value:.3g}, always-valid p={row.sequential_p_value:.3g}"
        )
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    checked = sorted({c.metric for c in report.guardrail_checks})
    if report.breaches:
        for check in report.breaches:
            typer.secho(
                f"GUARDRAIL BREACHED: {check.metric} {'rose' if check.worse_when == 'higher' else 'fell'} "
                f"{check.lift * 100:+.2f}% for {check.variant} (p={check.p_value:.3g})",
                fg=typer.colors.RED,
            )
    elif checked:
        typer.echo(f"guardrails held: {', '.join(checked)}")
    typer.echo(f"wrote {', '.join(written)}")
    if fail_on_breach and report.breaches:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add the `experiments` group to the root CLI."""
    group = typer.Typer(help="A/B experiments: definitions, assignment, analysis.", no_args_is_help=True)
    group.command("validate")(validate)
    group.command("list")(list_)
    group.command("assign")(assign)
    group.command("status")(status)
    group.command("analyze")(analyze)
    app.add_typer(group, name="experiments")
