"""The training pipeline end to end on a small synthetic lake, against a real SQLite MLflow store.

One module-scoped workspace trains twice with the same seed: the second run must
reproduce the first's metrics exactly and, tying with the champion, must not
replace it. Each step is also checked alone on data with a known answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInputError, NotFoundError
from core.lake import Lake
from core.settings import Settings
from features.ingest.synthetic import SyntheticConfig, generate
from models.bundle import ModelBundle
from training.candidates import tune_candidates
from training.data import dataset_hash, load_training_data, require_history
from training.evaluation import BASELINES
from training.pipeline import (
    TrainingConfig,
    TrainingResult,
    choose_served,
    holdout_users,
    run_training,
    split_validation,
)
from training.ranker_data import as_of_join
from training.registry import CHALLENGER, CHAMPION, alias_version
from training.tracking import Tracker

MODELS = ["popularity", "item_knn"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, TrainingResult, TrainingResult]:
    settings = Settings(home=tmp_path_factory.mktemp("train") / "ws")
    settings.workspace.ensure()
    generate(Lake(settings.workspace.lake_dir), SyntheticConfig(seed=7, n_titles=120, n_profiles=300, n_events=12_000))
    config = {"models": MODELS, "seed": 3, "candidate_k": 30, "ranker_params": {"epochs": 2, "batch_size": 64}}
    first = run_training(settings, TrainingConfig(**config))  # type: ignore[arg-type]
    second = run_training(settings, TrainingConfig(**config))  # type: ignore[arg-type]
    return settings, first, second


def test_first_run_registers_a_champion_with_runs_metrics_and_bundle(
    trained: tuple[Settings, TrainingResult, TrainingResult],
) -> None:
    settings, first, _ = trained
    assert first.registration is not None and first.registration.promoted
    tracker = Tracker(settings)
    champion = alias_version(tracker, settings.registered_model, CHAMPION)
    assert str(champion.version) == first.registration.version == "1"

    runs = tracker.client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'"
    )
    assert sorted(r.info.run_name for r in runs) == [
        "candidate:item_knn",
        "candidate:popularity",
        "ranker:neural-ranker",
    ]
    parent = tracker.client.get_run(first.run_id)
    assert parent.data.tags["marquee.dataset_hash"].startswith("sha256:")
    assert parent.data.params["data.data_window_start"] < parent.data.params["data.data_window_end"]
    assert 0.0 < parent.data.metrics["served.ndcg_at_10"] <= 1.0
    assert parent.data.metrics["served.ndcg_at_10"] == pytest.approx(first.served_value)
    artifacts = {a.path for a in tracker.client.list_artifacts(first.run_id, "bundle")}
    assert "bundle/bundle.json" in artifacts

    bundle = ModelBundle.load(first.bundle_dir)
    meta = bundle.metadata
    assert set(bundle.candidates) == set(MODELS) and bundle.ranker is not None
    assert meta["ranker_columns"] == bundle.ranker.feature_names
    assert meta["ranker_columns"][:3] == ["cand_popularity_score", "cand_popularity_rrank", "cand_popularity_hit"]
    assert meta["feature_service"] == "ranker_v1" and meta["seed"] == 3
    # Point-in-time features reached the ranker: profile activity, title popularity (episodes
    # looked up under their series) and the on-demand genre match are not all zero.
    for column in ("plays_total", "title_plays_total", "genre_match"):
        assert bundle.ranker.mean[meta["ranker_columns"].index(column)] > 0, column
    assert meta["primary_candidate"] in MODELS and meta["ranker_used"] == first.ranker_used
    assert meta["dataset_hash"] == parent.data.tags["marquee.dataset_hash"]
    # The ranker ships as "used" only when it beat the best single candidate on held-out profiles.
    holdout = {k.removeprefix("holdout/"): v["ndcg@10"] for k, v in first.metrics.items() if k.startswith("holdout/")}
    assert first.ranker_used == (holdout["ranked"] > max(holdout[m] for m in MODELS if m not in BASELINES))
    # The runner-up by the same rule became challenger: the two aliases name different lists.
    assert first.challenger_version == "2" and first.runner_up not in (None, first.served)


def test_same_seed_same_metrics_and_a_tie_keeps_the_champion(
    trained: tuple[Settings, TrainingResult, TrainingResult],
) -> None:
    settings, first, second = trained
    assert json.dumps(first.metrics, sort_keys=True) == json.dumps(second.metrics, sort_keys=True)
    assert second.registration is not None and not second.registration.promoted
    tracker = Tracker(settings)
    assert str(alias_version(tracker, settings.registered_model, CHAMPION).version) == "1"
    # Versions 1 and 2 came from the first run (champion, runner-up); the tie is version 3, the challenger.
    assert str(alias_version(tracker, settings.registered_model, CHALLENGER).version) == "3"


def test_clear_errors_for_empty_lake_unknown_model_and_profile_without_history(settings: Settings) -> None:
    with pytest.raises(InvalidInputError, match="marquee data generate"):
        run_training(settings, TrainingConfig(models=MODELS))
    with pytest.raises(InvalidInputError, match=r"unknown model.*nope.*popularity"):
        TrainingConfig(models=["nope"]).check()
    frame = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "ts": [2, 1], "weight": [1.0, 1.0]})
    assert require_history(frame, "a")["item_id"].tolist() == ["y", "x"]
    with pytest.raises(NotFoundError, match="'ghost' has no watch history"):
        require_history(frame, "ghost")


def test_dataset_hash_ignores_row_order_and_sees_any_change() -> None:
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3"],
            "profile_id": ["p1", "p1", "p2"],
            "title_id": ["t1", "t2", "t1"],
            "ts": pd.to_datetime([1, 2, 3], unit="s", utc=True),
            "position_s": [10, 20, 30],
            "duration_s": [100, 100, 100],
        }
    )
    h = dataset_hash(events)
    assert dataset_hash(events.iloc[::-1]) == h
    changed = events.copy()
    changed.loc[1, "position_s"] = 21
    assert dataset_hash(changed) != h


def test_as_of_join_takes_the_last_row_at_or_before_the_time_never_after() -> None:
    table = pd.DataFrame(
        {
            "profile_id": ["p", "p", "p", "q"],
            "event_timestamp": pd.to_datetime([10, 20, 30, 5], unit="s", utc=True),
            "plays": [1.0, 2.0, 3.0, 9.0],
        }
    )
    rows = pd.DataFrame(
        {
            "profile_id": ["p", "p", "q", "p", "r"],
            "event_timestamp": pd.to_datetime([25, 20, 6, 5, 50], unit="s", utc=True),
        }
    )
    got = as_of_join(rows, table, "profile_id", ["plays"])["plays"].to_numpy()
    np.testing.assert_array_equal(got, [2.0, 2.0, 9.0, np.nan, np.nan])


def test_ranker_is_served_only_when_it_beats_the_best_candidate() -> None:
    metrics = {"als": {"ndcg@10": 0.2}, "popularity": {"ndcg@10": 0.1}, "ranked": {"ndcg@10": 0.19}}
    served, used, note = choose_served(metrics, ["popularity", "als"], ranker_trained=True)
    assert (served, used) == ("als", False) and "does not beat" in note
    metrics["ranked"]["ndcg@10"] = 0.25
    assert choose_served(metrics, ["popularity", "als"], ranker_trained=True)[:2] == ("ranked", True)
    assert holdout_users(["a", "b", "c", "d"], 0.5, seed=1) == holdout_users(["d", "c", "b", "a"], 0.5, seed=1)


def test_training_data_window_and_sizes(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    generate(lake, SyntheticConfig(seed=1, n_titles=30, n_profiles=20, n_events=500))
    data = load_training_data(lake)
    assert data.n_events == 500
    assert data.data_window[0] < data.data_window[1]
    assert data.interactions.duplicated(["user_id", "item_id"]).sum() == 0
    # Lake timestamps are milliseconds; interactions carry seconds since the epoch.
    assert data.interactions["ts"].max() == int(pd.Timestamp(data.data_window[1]).timestamp())


def test_tuning_stays_within_the_trial_budget_on_the_validation_split(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    generate(lake, SyntheticConfig(seed=2, n_titles=40, n_profiles=60, n_events=2_000))
    split = split_validation(load_training_data(lake))
    tuned = tune_candidates(["popularity", "item_knn"], split, trials=3, seed=0)
    assert set(tuned) == {"item_knn"}  # popularity has nothing to tune
    result = tuned["item_knn"]
    assert 1 <= len(result.trials) <= 3
    assert set(result.params) <= {"neighbours", "half_life"}
    assert result.score == max(score for _, score in result.trials)
