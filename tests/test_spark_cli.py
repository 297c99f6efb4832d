"""``MARQUEE_ENGINE=spark marquee features materialize && MARQUEE_ENGINE=spark marquee train`` on ml-latest-small.

The issue's "done when": both commands run on the Spark engine (local[2]) and a
champion is registered; the online features are the same as the pandas engine's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_shared_data
from typer.testing import CliRunner

from core.lake import Lake
from core.settings import Settings
from marquee.cli import app
from training.registry import CHAMPION, alias_version
from training.tracking import Tracker

pytestmark = pytest.mark.slow


def test_materialize_and_train_on_spark_register_a_champion(tmp_path: Path, spark) -> None:  # type: ignore[no-untyped-def]
    from features.ingest.movielens import load_movielens

    home = tmp_path / "ws"
    load_movielens(require_shared_data("ml-latest-small"), Lake(home / "lake"))
    env = {"MARQUEE_HOME": str(home), "MARQUEE_ENGINE": "spark", "MARQUEE_SPARK_MASTER": "local[2]"}
    runner = CliRunner()
    result = runner.invoke(app, ["features", "materialize"], env=env)
    assert result.exit_code == 0, result.output
    assert "events 100,836" in result.output and "2018-09-25" in result.output
    result = runner.invoke(app, ["features", "get", "mlu1"], env=env)
    assert result.exit_code == 0, result.output
    assert "232" in result.output  # user 1 rated 232 movies: plays_total as with pandas

    result = runner.invoke(
        app, ["train", "--models", "popularity,als", "--epochs", "1", "--k", "20", "--no-refit"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "sha256-xxhash64:" in result.output  # the Spark engine hashed the events
    settings = Settings(home=home)
    assert alias_version(Tracker(settings), settings.registered_model, CHAMPION) is not None
