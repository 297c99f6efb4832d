"""``marquee evaluate`` and ``training.evaluation`` on a tiny MovieLens folder written in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared_data
from typer.testing import CliRunner

from core.errors import InvalidInputError
from marquee.cli import app
from training.evaluation import evaluate_model, evaluate_models, title_features
from training.protocol import temporal_user_split

GENRES = ["Horror", "Comedy", "Drama"]


def write_movielens(folder: Path, seed: int = 0) -> Path:
    """A ml-latest-small-shaped folder: 3 taste groups, each watching its own genre's films in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    movies = [(g * 20 + k + 1, f"Film {g}-{k} (19{80 + k})", GENRES[g]) for g in range(3) for k in range(20)]
    pd.DataFrame(movies, columns=["movieId", "title", "genres"]).to_csv(folder / "movies.csv", index=False)
    rows = []
    for user in range(1, 46):
        group = user % 3
        watched = rng.permutation(20)[:12]
        for step, k in enumerate(watched):
            rows.append((user, group * 20 + int(k) + 1, float(rng.integers(1, 6)), 1_000_000 + user * 1000 + step))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    ratings.to_csv(folder / "ratings.csv", index=False)
    return folder


def test_evaluate_command_prints_a_table_and_writes_the_report(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        ["evaluate", str(data), "--format", "movielens", "--models", "seqknn,item_knn", "--no-tune", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| seqknn |" in result.output and "| recency_ease |" in result.output
    report = json.loads(out.read_text())
    assert report["protocol"] == "temporal-user-80-20"
    assert set(report["models"]) == {"popularity", "ease", "recency_ease", "seqknn", "item_knn"}
    for metrics in report["models"].values():
        assert {"ndcg@10", "recall@20", "coverage@10", "fit_seconds"} <= set(metrics)
        assert 0.0 <= metrics["ndcg@10"] <= 1.0
    # Three disjoint taste groups: any personalised model must beat popularity clearly.
    assert report["models"]["seqknn"]["ndcg@10"] > report["models"]["popularity"]["ndcg@10"] + 0.1


def test_evaluate_rejects_unknown_models_and_formats(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    runner = CliRunner()
    bad_model = runner.invoke(app, ["evaluate", str(data), "--models", "nope"])
    assert bad_model.exit_code != 0
    assert isinstance(bad_model.exception, InvalidInputError)
    assert "unknown model(s) nope" in str(bad_model.exception) and "seqknn" in str(bad_model.exception)
    bad_format = runner.invoke(app, ["evaluate", str(data), "--format", "csv"])
    assert isinstance(bad_format.exception, InvalidInputError)
    assert "movielens" in str(bad_format.exception)


def test_evaluation_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    data = write_movielens(tmp_path / "ml-tiny")
    ratings = pd.read_csv(data / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    first = evaluate_models(ratings, ["als"], tune=False, seed=3, progress=False)
    second = evaluate_models(ratings, ["als"], tune=False, seed=3, progress=False)
    assert first["models"]["als"]["ndcg@10"] == second["models"]["als"]["ndcg@10"]


def test_tuning_looks_at_validation_only(tmp_path: Path) -> None:
    """Tuning never sees test: changing the test part of the data leaves the chosen parameters alone."""
    data = write_movielens(tmp_path / "ml-tiny")
    ratings = pd.read_csv(data / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"}
    )
    split = temporal_user_split(ratings)
    shuffled = split.test.assign(item_id=np.random.default_rng(0).permutation(split.test["item_id"].to_numpy()))
    other = type(split)(train=split.train, test=shuffled)
    assert evaluate_model("item_knn", split)["params"] == evaluate_model("item_knn", other)["params"]


def test_title_features_come_from_the_titles_table() -> None:
    titles = pd.DataFrame(
        {"title_id": ["t1"], "genres": [["Drama"]], "release_year": [1994], "maturity_level": [2], "tags": [["heist"]]}
    )
    assert title_features(titles) == {"t1": ["genre:Drama", "maturity:2", "decade:1990", "tag:heist"]}


@pytest.mark.slow
def test_seqknn_beats_the_recency_ease_figure_on_ml_latest_small() -> None:
    """One real-data run (defaults, no tuning): the sequence model clears recency-weighted EASE's 0.1458."""
    path = require_shared_data("ml-latest-small/ratings.csv")
    ratings = pd.read_csv(path).rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "ts"})
    split = temporal_user_split(ratings)
    assert split.describe()["train_interactions"] == 80_419
    result = evaluate_model("seqknn", split, tune=False)
    assert result["ndcg@10"] >= 0.155, result


def test_evaluate_on_the_workspace_lake_leaves_it_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.lake import Lake
    from core.settings import Settings
    from features.ingest import load_dataset

    home = tmp_path / "ws"
    monkeypatch.setenv("MARQUEE_HOME", str(home))
    settings = Settings()
    settings.workspace.ensure()
    lake = Lake(settings.workspace.lake_dir)
    load_dataset("movielens", write_movielens(tmp_path / "ml-tiny"), lake)
    before = {p: p.stat().st_mtime_ns for p in settings.workspace.lake_dir.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["evaluate", ".", "--format", "lake", "--models", "seqknn", "--no-tune"])
    assert result.exit_code == 0, result.output
    assert "| seqknn |" in result.output
    after = {p: p.stat().st_mtime_ns for p in settings.workspace.lake_dir.rglob("*") if p.is_file()}
    assert after == before


def test_evaluate_on_an_empty_lake_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["evaluate", ".", "--format", "lake"])
    assert isinstance(result.exception, InvalidInputError)
    assert "no watch events" in str(result.exception)
