"""`marquee train` and `marquee models`: clear errors, and one real run through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InvalidInputError, NotFoundError
from core.lake import Lake
from features.ingest.synthetic import SyntheticConfig, generate
from marquee.cli import app


def _invoke(home: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"MARQUEE_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"})


def test_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    result = _invoke(tmp_path / "ws", "train", "--models", "popularity,nope")
    assert isinstance(result.exception, InvalidInputError)
    assert "nope" in str(result.exception) and "item_knn" in str(result.exception)


def test_empty_lake_says_how_to_fill_it(tmp_path: Path) -> None:
    result = _invoke(tmp_path / "ws", "train", "--models", "popularity")
    assert isinstance(result.exception, InvalidInputError)
    assert "marquee data generate" in str(result.exception)


@pytest.mark.slow  # creating the SQLite MLflow store costs several seconds
def test_promote_without_a_registered_model(tmp_path: Path) -> None:
    result = _invoke(tmp_path / "ws", "models", "promote", "1")
    assert isinstance(result.exception, NotFoundError)
    assert "marquee train" in str(result.exception)


@pytest.mark.slow
def test_train_then_list_then_recommend(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    generate(Lake(home / "lake"), SyntheticConfig(seed=5, n_titles=60, n_profiles=120, n_events=4_000))
    result = _invoke(home, "train", "--models", "popularity,item_knn", "--no-ranker", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "registered marquee-recommender version 1 as champion" in result.output
    assert "validation/item_knn" in result.output and "no ranker trained" in result.output

    listed = _invoke(home, "models", "list")
    assert listed.exit_code == 0 and "champion" in listed.output

    profile = Lake(home / "lake").read("watch_events", ["profile_id"])["profile_id"].iloc[0]
    recs = _invoke(home, "models", "recommend", profile, "--k", "3")
    assert recs.exit_code == 0, recs.output
    assert len([line for line in recs.output.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]) == 3
    ghost = _invoke(home, "models", "recommend", "ghost")
    assert isinstance(ghost.exception, NotFoundError) and "no watch history" in str(ghost.exception)
