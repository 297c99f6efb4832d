"""`run_training` on the real ml-latest-small registers a champion whose ranker is honest about its value."""

from __future__ import annotations

import pytest
from conftest import require_shared_data

from core.lake import Lake
from core.settings import Settings
from features.ingest import load_dataset
from models.bundle import ModelBundle
from training.pipeline import TrainingConfig, run_training
from training.registry import CHAMPION, alias_version
from training.tracking import Tracker


@pytest.mark.slow
def test_movielens_small_registers_a_champion(settings: Settings) -> None:
    path = require_shared_data("ml-latest-small")
    load_dataset("movielens", path, Lake(settings.workspace.lake_dir))
    result = run_training(settings, TrainingConfig(models=["popularity", "als"], seed=1, ranker_params={"epochs": 2}))
    assert result.data["profiles"] == 610
    assert result.registration is not None and result.registration.promoted
    assert str(alias_version(Tracker(settings), settings.registered_model, CHAMPION).version) == "1"
    # ALS beats popularity on MovieLens (EVALUATION.md); the served list is the best non-baseline
    # (``marquee evaluate``'s rule): ALS or the ranked union, whichever did better on the holdout.
    validation = result.metrics
    assert validation["validation/als"]["ndcg@10"] > validation["validation/popularity"]["ndcg@10"]
    holdout = {k.split("/")[1]: v["ndcg@10"] for k, v in validation.items() if k.startswith("holdout/")}
    assert result.served_value == max(holdout[s] for s in ("als", *(["ranked"] * ("ranked" in holdout))))
    bundle = ModelBundle.load(result.bundle_dir)
    assert bundle.metadata["data_window"][0].startswith("1996")
