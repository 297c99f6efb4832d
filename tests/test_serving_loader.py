"""The registry loader: aliases, shared versions, lake changes that rebuild nothing, broken versions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import test_serving_world as world

from core.errors import ServiceUnavailableError
from core.lake import Lake
from core.settings import Settings
from serving.loader import ModelLoader


@pytest.fixture
def loader(settings: Settings, tmp_path: Path) -> ModelLoader:
    world.write_lake(settings)
    world.register(settings, world.build_bundle(), tmp_path)
    loader = ModelLoader(settings, poll_s=0, use_online_features=False)
    assert loader.refresh() is True
    return loader


def test_nothing_registered_is_not_ready(settings: Settings) -> None:
    loader = ModelLoader(settings, poll_s=0, use_online_features=False)
    assert loader.refresh() is False
    assert not loader.ready
    with pytest.raises(ServiceUnavailableError, match="marquee train"):
        loader.get()


def test_both_aliases_on_one_version_load_it_once(loader: ModelLoader, settings: Settings) -> None:
    world.move_alias(settings, "challenger", "1")
    assert loader.refresh() is True
    assert loader.versions() == {"champion": "1", "challenger": "1"}
    assert loader.get("challenger").pipeline is loader.get("champion").pipeline
    assert loader.refresh() is False  # nothing moved


def test_a_lake_change_rebuilds_nothing_and_the_context_alone_decides(loader: ModelLoader, settings: Settings) -> None:
    """New watch events and profiles in the lake leave the loaded pipeline as it is (no reread, no rebuild)."""
    pipeline = loader.get().pipeline
    before = pipeline.recommend(world.context("newbie"), k=2)
    assert (before.source, before.reason) == ("fallback", "no_history")
    ts = pd.Timestamp("2024-03-01", tz="UTC")
    events = pd.DataFrame(
        {
            "event_id": ["n1", "n2"],
            "profile_id": "newbie",
            "title_id": ["a1", "a2"],
            "ts": [ts, ts + pd.Timedelta(minutes=1)],
            "position_s": 600,
            "duration_s": 6000,
        }
    )
    lake = Lake(settings.workspace.lake_dir)
    lake.write("watch_events", events, mode="append")
    lake.write("profiles", world.profiles_frame().head(1).assign(profile_id="newbie"), mode="append")
    assert loader.refresh() is False  # nothing moved in the registry: nothing to do
    assert loader.get().pipeline is pipeline
    # the lake's new events do not reach the model server; the same watches in the request do
    assert pipeline.recommend(world.context("newbie"), k=2).source == "fallback"
    watched = world.context("newbie", history=[{"title_id": t, "ts": ts, "progress": 0.1} for t in ("a1", "a2")])
    result = pipeline.recommend(watched, k=2)
    assert result.source == "model"
    assert {t for t, _ in result.items} <= {"a3", "a4", "a5"}  # the adult cluster, minus what was watched


def test_a_new_version_still_hot_swaps(loader: ModelLoader, settings: Settings, tmp_path: Path) -> None:
    old = loader.get().pipeline
    version = world.register(settings, world.build_bundle("als"), tmp_path)
    assert loader.refresh() is True
    assert loader.get().version == version and loader.get().pipeline is not old
    assert "als" in loader.get().pipeline.generators


def test_a_broken_version_keeps_the_old_one_serving(loader: ModelLoader, settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text('{"format": 99}')
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id)
    client.log_artifacts(run.info.run_id, str(broken), "bundle")
    version = client.create_model_version(
        settings.registered_model, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id
    )
    world.move_alias(settings, "champion", str(version.version))
    assert loader.refresh() is False
    assert loader.get().version == "1"
    assert loader.last_error is not None and "bundle format 99" in loader.last_error


def test_a_corrupted_artifact_is_named_and_the_old_version_keeps_serving(
    loader: ModelLoader, settings: Settings, tmp_path: Path
) -> None:
    """A registered version whose model file is garbage: the error names the artifact and the version; v1 serves on."""
    folder = world.build_bundle().save(tmp_path / "corrupted")
    (folder / "candidates" / "item_knn" / "state.npz").write_bytes(b"\x00not a zip archive\x00" * 8)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "bundle")
    version = client.create_model_version(
        settings.registered_model, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id
    )
    world.move_alias(settings, "champion", str(version.version))
    assert loader.refresh() is False
    assert loader.get().version == "1"
    error = loader.last_error or ""
    assert f"version {version.version}" in error and "candidates/item_knn: cannot load" in error, error
    picks = loader.get().pipeline  # the old version still answers
    assert picks is not None
