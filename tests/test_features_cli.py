"""`marquee features apply | materialize | get` on a small lake, and once on ml-latest-small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import require_shared_data
from test_features_store import small_lake
from typer.testing import CliRunner

from core.errors import NotFoundError
from core.lake import Lake
from marquee.cli import app


def _run(home: Path, *args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["features", *args], env={"MARQUEE_HOME": str(home)})
    return result.exit_code, result.output, result.exception


def test_apply_materialize_get(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    small_lake(home / "lake")
    code, out, _ = _run(home, "apply")
    assert code == 0, out
    assert "ranker_v1" in out and "profile_activity" in out
    assert (home / "feast" / "feature_store.yaml").exists()
    code, out, _ = _run(home, "materialize")
    assert code == 0, out
    assert "profile_activity" in out and "data window 2021-05-01" in out
    code, out, _ = _run(home, "get", "p4", "--json")
    assert code == 0, out
    values = json.loads(out.strip().splitlines()[-1])
    assert values["profile_id"] == "p4" and values["plays_total"] > 0 and values["affinity_genres"]


def test_get_of_an_unknown_profile_says_what_to_check(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    small_lake(home / "lake")
    code, _, error = _run(home, "get", "nobody")
    assert code != 0 and isinstance(error, NotFoundError)
    assert "nobody" in str(error) and "materialize" in str(error)


def test_materialize_on_an_empty_lake_says_how_to_fill_it(tmp_path: Path) -> None:
    code, _, error = _run(tmp_path / "ws", "materialize")
    assert code != 0 and isinstance(error, NotFoundError) and "marquee data" in str(error)


@pytest.mark.slow
def test_done_when_on_ml_latest_small(tmp_path: Path) -> None:
    from features.ingest.movielens import load_movielens

    home = tmp_path / "ws"
    load_movielens(require_shared_data("ml-latest-small"), Lake(home / "lake"))
    assert _run(home, "apply")[0] == 0
    code, out, _ = _run(home, "materialize")
    assert code == 0, out
    assert "1996-03-29" in out and "2018-09-25" in out
    code, out, _ = _run(home, "get", "mlu1")
    assert code == 0, out
    assert "plays_total" in out and "232" in out  # user 1 rated 232 movies
    assert "affinity_genres" in out
