"""`marquee train` and `marquee models ...`: train, register, promote, inspect registered versions."""

from __future__ import annotations

from typing import Annotated

import typer

from core.errors import InvalidInputError
from core.rules import MODEL_ALIASES
from marquee.commands._common import load_settings
from training.defaults import DEFAULT_MODELS


def train(
    models: Annotated[
        str, typer.Option("--models", "-m", help="candidate models by registry name, comma-separated")
    ] = ",".join(DEFAULT_MODELS),
    seed: Annotated[int | None, typer.Option(help="random seed (default: MARQUEE_SEED, 42)")] = None,
    trials: Annotated[
        int, typer.Option(min=0, max=200, help="hyper-parameter trials per model on the validation split (0: defaults)")
    ] = 0,
    ranker: Annotated[bool, typer.Option("--ranker/--no-ranker", help="train the neural ranker")] = True,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="make the new version champion if it wins")
    ] = True,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="candidates per model per profile")] = 50,
    epochs: Annotated[int, typer.Option(min=1, max=100, help="ranker epochs")] = 3,
    ranker_workers: Annotated[
        int | None,
        typer.Option(
            "--ranker-workers",
            min=1,
            max=64,
            help="processes that train the ranker together, DDP over gloo (default: MARQUEE_RANKER_WORKERS, 1)",
        ),
    ] = None,
    refit: Annotated[
        bool, typer.Option("--refit/--no-refit", help="refit candidates on all data for the served bundle")
    ] = True,
) -> None:
    """Train candidate models and the ranker, log them to MLflow, register the bundle, apply promotion."""
    from training.pipeline import TrainingConfig, run_training

    settings = load_settings()
    config = TrainingConfig(
        models=[m.strip() for m in models.split(",") if m.strip()],
        seed=settings.seed if seed is None else seed,
        trials=trials,
        candidate_k=k,
        use_ranker=ranker,
        ranker_params={"epochs": epochs},
        ranker_workers=settings.ranker_workers if ranker_workers is None else ranker_workers,
        refit=refit,
        promote=promote,
        progress=True,
    )
    result = run_training(settings, config)

    typer.echo(
        f"trained on {result.data['events']:,} events ({result.data['dataset_hash'][:19]}…), "
        f"window {result.data['data_window_start']} → {result.data['data_window_end']}"
    )
    typer.echo(f"{'list':<28}{'ndcg@10':>9}{'recall@20':>11}{'coverage@10':>13}")
    for stage, values in result.metrics.items():
        typer.echo(f"{stage:<28}{values['ndcg@10']:>9.4f}{values['recall@20']:>11.4f}{values['coverage@10']:>13.3f}")
    typer.echo(result.ranker_note)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    typer.echo(f"time: {result.wall_seconds:.1f}s wall ({stages})")
    typer.echo(f"MLflow run {result.run_id} in {settings.mlflow_uri}")
    if result.registration is not None:
        reg = result.registration
        status = "champion" if reg.promoted else "challenger"
        typer.echo(f"registered {reg.name} version {reg.version} as {status}: {reg.decision.reason}")
        if result.challenger_version is not None:
            typer.echo(
                f"registered {reg.name} version {result.challenger_version} as challenger: "
                f"the runner-up ({result.runner_up}), so champion and challenger differ"
            )
    typer.echo(f"see it with: mlflow ui --backend-store-uri {settings.mlflow_uri}")


models_app = typer.Typer(help="Registered model versions: list, promote, try one on a profile.", no_args_is_help=True)


@models_app.command("list")
def list_models() -> None:
    """Versions of the registered model, newest first, with aliases and validation ndcg@10."""
    from training.registry import list_versions
    from training.tracking import Tracker

    settings = load_settings()
    rows = list_versions(Tracker(settings), settings.registered_model)
    if not rows:
        typer.echo(f"no versions of {settings.registered_model} yet; run `marquee train`")
        return
    typer.echo(f"{'version':>7}  {'aliases':<22}{'metric':<10}{'value':>8}  run")
    for row in rows:
        value = f"{float(row['value']):.4f}" if row["value"] else "-"
        typer.echo(
            f"{row['version']:>7}  {','.join(row['aliases']) or '-':<22}{row['metric']:<10}{value:>8}  {row['run_id']}"
        )


@models_app.command("promote")
def promote_model(version: Annotated[str, typer.Argument(help="the version number to make champion")]) -> None:
    """Make VERSION the champion by hand (rollback or override); the rule is not applied."""
    from training.registry import promote_version
    from training.tracking import Tracker

    settings = load_settings()
    promote_version(Tracker(settings), settings.registered_model, version)
    typer.echo(f"{settings.registered_model} version {version} is now champion")


@models_app.command("recommend")
def recommend(
    profile_id: Annotated[str, typer.Argument(help="a profile with watch history in the lake")],
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 10,
    alias: Annotated[str, typer.Option(help="champion or challenger")] = "champion",
) -> None:
    """What a registered version's primary candidate model proposes for one profile (a quick check)."""
    from training.inspect import recommend_for_profile

    if alias not in MODEL_ALIASES:
        raise InvalidInputError(f"--alias must be one of {', '.join(MODEL_ALIASES)}, got {alias!r}")
    settings = load_settings()
    version, role, rec = recommend_for_profile(settings, profile_id, k=k, alias=alias)
    typer.echo(f"{settings.registered_model}@{alias} (version {version}), candidate model {role}:")
    for rank, (title_id, score) in enumerate(zip(rec.item_ids, rec.scores, strict=True), start=1):
        typer.echo(f"{rank:>3}. {title_id}  {score:.4f}")


def register(app: typer.Typer) -> None:
    """Add `train` and the `models` group to the root CLI."""
    app.command("train")(train)
    app.add_typer(models_app, name="models")
