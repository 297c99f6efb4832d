"""Registry and promotion against a real SQLite MLflow store: the rule both ways, the escape hatch, the layout."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from core.errors import InvalidInputError, NotFoundError
from core.settings import Settings
from models.bundle import ModelBundle
from models.ranker import NeuralRanker
from training.promotion import decide
from training.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    list_versions,
    promote_version,
    register_and_promote,
)
from training.tracking import BUNDLE_ARTIFACT, Tracker, metric_key


def _bundle(tmp_path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    groups = np.repeat(np.arange(4), 10)
    labels = (np.arange(40) % 10 == 0).astype(np.float32)
    ranker = NeuralRanker(hidden=(4,), epochs=1, seed=seed).fit(x, groups, labels, ["a", "b"])
    return ModelBundle(candidates={}, ranker=ranker, metadata={"seed": seed, "feature_service": "ranker_v1"}).save(
        tmp_path / f"bundle-{seed}"
    )


def _train_once(tracker: Tracker, tmp_path: Path, seed: int, value: float, promote: bool = True):  # type: ignore[no-untyped-def]
    with tracker.run(f"train seed={seed}", tags={"seed": str(seed)}) as run_id:
        tracker.log_metrics(run_id, {"ndcg@10": value}, prefix="val_")
        tracker.log_artifacts(run_id, _bundle(tmp_path, seed), BUNDLE_ARTIFACT)
    return register_and_promote(tracker, "recs", run_id, metric_value=value, promote=promote)


def test_promotion_rule_both_ways() -> None:
    assert decide(0.1, None).promote
    assert decide(0.2, 0.1).promote
    assert not decide(0.1, 0.2).promote
    assert not decide(0.1, 0.1).promote  # a tie keeps the champion
    assert not decide(0.105, 0.1, min_improvement=0.01).promote
    assert "does not beat" in decide(0.1, 0.2).reason
    with pytest.raises(ValueError, match="finite"):
        decide(float("nan"), 0.1)


def test_challenger_replaces_champion_only_when_better(settings: Settings, tmp_path: Path) -> None:
    tracker = Tracker(settings)
    first = _train_once(tracker, tmp_path, seed=1, value=0.10)
    assert first.promoted and first.version == "1"

    worse = _train_once(tracker, tmp_path, seed=2, value=0.08)
    assert not worse.promoted and "does not beat" in worse.decision.reason
    assert str(alias_version(tracker, "recs", CHAMPION).version) == "1"
    assert str(alias_version(tracker, "recs", CHALLENGER).version) == "2"

    better = _train_once(tracker, tmp_path, seed=3, value=0.12)
    assert better.promoted
    assert str(alias_version(tracker, "recs", CHAMPION).version) == "3"

    held = _train_once(tracker, tmp_path, seed=4, value=0.5, promote=False)
    assert held.decision.promote and not held.promoted
    assert str(alias_version(tracker, "recs", CHAMPION).version) == "3"

    # Serving's exact read path: download the champion and load the bundle.
    # ``models:/`` URIs resolve through the registry URI, so it must point at the same store.
    previous = mlflow.get_registry_uri()
    mlflow.set_registry_uri(settings.mlflow_uri)
    try:
        path = mlflow.artifacts.download_artifacts("models:/recs@champion", tracking_uri=settings.mlflow_uri)
    finally:
        mlflow.set_registry_uri(previous)
    bundle = ModelBundle.load(Path(path))
    assert bundle.metadata["seed"] == 3 and bundle.ranker is not None
    assert bundle.ranker.score(np.zeros((2, 2), np.float32)).shape == (2,)

    rows = list_versions(tracker, "recs")
    assert [r["version"] for r in rows] == ["4", "3", "2", "1"]
    assert rows[1]["aliases"] == [CHAMPION] and rows[0]["aliases"] == [CHALLENGER]


def test_escape_hatch_promotes_by_hand_with_clear_errors(settings: Settings, tmp_path: Path) -> None:
    tracker = Tracker(settings)
    with pytest.raises(NotFoundError, match="train one first"):
        promote_version(tracker, "recs", "1")
    _train_once(tracker, tmp_path, seed=1, value=0.2)
    _train_once(tracker, tmp_path, seed=2, value=0.1)
    promote_version(tracker, "recs", "2")
    assert str(alias_version(tracker, "recs", CHAMPION).version) == "2"
    with pytest.raises(NotFoundError, match="versions: 1, 2"):
        promote_version(tracker, "recs", "7")
    with pytest.raises(InvalidInputError, match="version number"):
        promote_version(tracker, "recs", "latest")


def test_metric_names_are_mlflow_safe() -> None:
    assert metric_key("ndcg@10", "val_") == "val_ndcg_at_10"
