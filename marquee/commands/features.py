"""`marquee features`: the Feast feature store — apply, materialize, get."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

import typer

from marquee.commands._common import load_settings

features_app = typer.Typer(help="The feature store: apply, materialize, get.", no_args_is_help=True)


@features_app.callback()
def _quiet_feast() -> None:
    """Silence Feast's notice that on-demand views are "experimental" (we use them on purpose)."""
    import warnings

    warnings.filterwarnings("ignore", message="On demand feature view is an experimental feature")


def register(app: typer.Typer) -> None:
    """Add the `features` command group to the root CLI."""
    app.add_typer(features_app, name="features")


@features_app.command("apply")
def apply_command() -> None:
    """Generate the workspace's Feast repo from settings and register entities, views and services."""
    from features.store import apply_definitions, open_store

    settings = load_settings()
    store = open_store(settings, apply=False)
    services = apply_definitions(store)
    views = sorted(v.name for v in store.list_feature_views())
    typer.echo(f"feast repo: {settings.workspace.feast_dir} (online store: {settings.feast_online})")
    typer.echo(f"feature views: {', '.join(views)}")
    typer.echo(f"feature services: {', '.join(services)}")


@features_app.command("materialize")
def materialize_command(
    as_of: Annotated[
        datetime | None, typer.Option(help="Last snapshot time (UTC); default the midnight after the last event.")
    ] = None,
    half_life_days: Annotated[float, typer.Option(min=0.01, help="Half-life of the genre-affinity decay.")] = 30.0,
    engine: Annotated[
        str, typer.Option(help="direct: write latest rows (fast); feast: FeatureStore.materialize.")
    ] = "direct",
) -> None:
    """Build the feature tables from the lake and load their latest rows into the online store."""
    import pandas as pd

    from core.errors import InvalidInputError
    from core.lake import Lake
    from features.pipelines import PipelineOptions
    from features.spark.session import session_for
    from features.store import materialize, open_store

    if engine not in ("direct", "feast"):
        raise InvalidInputError(f"--engine must be 'direct' or 'feast', got {engine!r}")
    settings = load_settings()
    store = open_store(settings)
    stamp = None if as_of is None else pd.Timestamp(as_of).tz_localize("UTC") if as_of.tzinfo is None else as_of
    report = materialize(
        store,
        Lake.from_settings(settings),
        as_of=None if stamp is None else pd.Timestamp(stamp),
        options=PipelineOptions(half_life_days=half_life_days),
        progress=True,
        engine="feast" if engine == "feast" else "direct",
        spark=session_for(settings),
    )
    tables = report.tables
    typer.echo(f"events {tables.events:,} → plays {tables.plays:,}; data window {tables.data_start} .. {tables.as_of}")
    for name, rows in tables.rows.items():
        typer.echo(f"  {name:<24} {rows:>12,} rows")
    typer.echo(f"feature tables in {tables.seconds:.1f} s; materialized in {report.seconds:.1f} s in all")


@features_app.command("get")
def get_command(
    profile_id: Annotated[str, typer.Argument(metavar="PROFILE_ID", help="The profile whose features to print.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print one profile's online features (service profile_v1)."""
    from core.errors import NotFoundError
    from features.online import OnlineFeatureReader
    from features.store import open_store

    settings = load_settings()
    store = open_store(settings)
    values = OnlineFeatureReader(store).profile_features(profile_id)
    features = {k: v for k, v in values.items() if k != "profile_id"}
    if all(v is None for v in features.values()):
        raise NotFoundError(
            f"profile {profile_id!r} has no online features; check the id, "
            "and run `marquee features materialize` after loading data"
        )
    if as_json:
        typer.echo(json.dumps({"profile_id": profile_id, **{k: _plain(v) for k, v in features.items()}}))
        return
    typer.echo(f"profile {profile_id}")
    for name in sorted(features):
        typer.echo(f"  {name:<24} {_show(features[name])}")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)
