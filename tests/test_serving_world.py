"""A small serving world built in code: lake tables, real fitted models, MLflow registrations.

Shared by the ``test_serving_*`` modules (no tests here). The data has a known
right answer:

* two taste clusters: family titles ``k1..k5`` (maturity 0) watched together by
  ``kid*`` profiles, adult titles ``a1..a5`` (maturity 3) watched together by
  ``adult*`` profiles; ``fr1`` is an adult title licensed only in France;
* ``a1`` is the most popular title overall, so popularity fallback for an adult
  starts with it and for a kid profile must skip it;
* ``viewer`` (adult, US) watched ``a1`` and ``a2`` and completed ``a3``, so a
  personal list starts with the other adult titles and never shows ``a3``;
* ``little`` (maturity 0, US) watched ``k1``: only family titles, ever.

The model server knows no profile: :func:`context` builds the ``ViewerContext``
the API would send for one of these profiles (from the same frames, with
``core.rules``' completed rule), and tests pass it with every request.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from core.lake import Lake
from core.rules import is_completed, progress
from core.settings import Settings
from models.base import CandidateGenerator, Interactions
from models.bundle import ModelBundle
from models.registry import model_class
from serving.contract import ViewerContext, WatchedTitle

FAMILY = [f"k{i}" for i in range(1, 6)]
ADULT = [f"a{i}" for i in range(1, 6)]
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def titles_frame() -> pd.DataFrame:
    """Family titles at level 0, adult titles at level 3, ``fr1`` licensed in FR only."""
    rows: list[tuple[str, int, list[str]]] = (
        [(t, 0, []) for t in FAMILY] + [(t, 3, []) for t in ADULT] + [("fr1", 3, ["FR"])]
    )
    return pd.DataFrame(
        {
            "title_id": [r[0] for r in rows],
            "type": "movie",
            "title": [r[0].upper() for r in rows],
            "maturity_level": [r[1] for r in rows],
            "countries": [r[2] for r in rows],
        }
    )


def events_frame() -> pd.DataFrame:
    """Watch events with the cluster structure described in the module docstring."""
    rows: list[tuple[str, str, int, int]] = []  # profile, title, minute, progress percent
    for u in range(6):
        for j, t in enumerate(FAMILY[: 3 + u % 3]):
            rows.append((f"kid{u}", t, u * 10 + j, 100))
    for u in range(6):
        for j, t in enumerate(["a1", *ADULT[1 : 3 + u % 3], *(["fr1"] if u % 2 else [])]):
            rows.append((f"adult{u}", t, u * 10 + j, 100))
    rows += [("fan", "a1", 200, 100), ("fan2", "a1", 201, 100), ("fan3", "a1", 202, 100)]
    rows += [("viewer", "a1", 300, 50), ("viewer", "a2", 301, 50), ("viewer", "a3", 302, 95)]
    rows += [("little", "k1", 400, 100)]
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "profile_id": [r[0] for r in rows],
            "title_id": [r[1] for r in rows],
            "ts": [T0 + pd.Timedelta(minutes=r[2]) for r in rows],
            "position_s": [r[3] * 60 for r in rows],
            "duration_s": 6000,
        }
    )


def profiles_frame() -> pd.DataFrame:
    """Kids profiles at level 0, everyone else adults in the US (``frenchie`` in France)."""
    events = events_frame()
    ids = [*sorted(set(events["profile_id"])), "frenchie"]
    level = [0 if p.startswith("kid") or p == "little" else 3 for p in ids]
    return pd.DataFrame(
        {
            "profile_id": ids,
            "account_id": [f"acc-{p}" for p in ids],
            "name": ids,
            "maturity_level": level,
            "is_kids": [lv == 0 for lv in level],
            "country": ["FR" if p == "frenchie" else "US" for p in ids],
        }
    )


def context(profile_id: str, **overrides: object) -> ViewerContext:
    """The viewer context the API would send for ``profile_id`` (an unknown id: no history, adult, US)."""
    events = events_frame().sort_values("ts")
    mine = events[events["profile_id"] == profile_id].drop_duplicates("title_id", keep="last")
    profiles = profiles_frame().set_index("profile_id")
    known = profile_id in profiles.index
    history = [
        WatchedTitle(title_id=t, ts=ts, progress=progress(pos, dur), completed=is_completed(progress(pos, dur)))
        for t, ts, pos, dur in zip(mine["title_id"], mine["ts"], mine["position_s"], mine["duration_s"], strict=True)
    ]
    fields: dict[str, object] = {
        "profile_id": profile_id,
        "history": history,
        "maturity_level": int(profiles.at[profile_id, "maturity_level"]) if known else 3,
        "kids": bool(profiles.at[profile_id, "is_kids"]) if known else False,
        "country": str(profiles.at[profile_id, "country"]) if known else "US",
    }
    fields.update(overrides)
    return ViewerContext.model_validate(fields)


def write_lake(settings: Settings) -> Lake:
    """Write titles, profiles and watch events into the workspace's lake."""
    lake = Lake(settings.workspace.lake_dir)
    lake.write("titles", titles_frame())
    lake.write("profiles", profiles_frame())
    lake.write("watch_events", events_frame())
    return lake


def interactions() -> Interactions:
    """The watch events as model training input."""
    events = events_frame()
    return Interactions(
        user_ids=events["profile_id"].to_numpy(dtype=str),
        item_ids=events["title_id"].to_numpy(dtype=str),
        timestamps=(events["ts"].astype("int64") // 10**9).to_numpy(dtype=np.int64),
        weights=np.ones(len(events), dtype=np.float32),
    )


def fitted(name: str) -> CandidateGenerator:
    """A real model from the registry, fitted on ``interactions()``."""
    cls = model_class(name)
    model = cls()  # type: ignore[call-arg]
    return model.fit(interactions())  # type: ignore[return-value]


def build_bundle(personal: str | None = "item_knn", metadata: dict[str, object] | None = None) -> ModelBundle:
    """Popularity plus (optionally) a personal model, as training would bundle them."""
    candidates: dict[str, CandidateGenerator] = {"popularity": fitted("popularity")}
    if personal:
        candidates[personal] = fitted(personal)
    return ModelBundle(candidates=candidates, metadata=dict(metadata or {}))


def register(settings: Settings, bundle: ModelBundle, tmp: Path, *, alias: str | None = "champion") -> str:
    """Log ``bundle`` to a run and register it the way training does; returns the version."""
    folder = bundle.save(tmp / f"bundle-{len(list(tmp.glob('bundle-*')))}")
    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    name = settings.registered_model
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("serving-tests", artifact_location=settings.mlflow_artifact_root)
    )
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "bundle")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def move_alias(settings: Settings, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (what promotion does)."""
    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    client.set_registered_model_alias(settings.registered_model, alias, version)
