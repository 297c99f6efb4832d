"""MovieLens loaders: every GroupLens layout from small files, and the real ml-latest-small."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import require_shared_data
from ingest_files import ml1m, ml100k, ml_csv

from core.lake import Lake
from features.ingest import load_dataset
from features.ingest.movielens import detect_layout, load_movielens, read_movielens
from features.ingest.ratings import DEFAULT_MOVIE_DURATION_S


def test_ml100k_layout(tmp_path: Path) -> None:
    frames = read_movielens(ml100k(tmp_path / "ml-100k"))
    assert frames.source == "movielens:ml-100k"
    titles = frames.titles.set_index("title_id")
    assert titles.loc["ml1", "genres"] == ["Animation", "Children", "Comedy"]
    assert titles.loc["ml2", "genres"] == ["Action", "Adventure", "Thriller"]
    assert titles.loc["ml3", "title"] == "Café Society"  # latin-1 decoded
    assert titles.loc["ml4", "genres"] == []  # the "unknown" flag is no genre
    assert pd.isna(titles.loc["ml4", "release_year"])
    events = frames.watch_events.set_index("event_id")
    assert list(events.index) == ["ml-1-1", "ml-1-2", "ml-2-1", "ml-3-3"]
    assert events.loc["ml-1-1", "position_s"] == DEFAULT_MOVIE_DURATION_S  # 5 stars = complete
    assert events.loc["ml-3-3", "position_s"] == DEFAULT_MOVIE_DURATION_S // 5
    assert events.loc["ml-1-2", "rating"] == 3.0
    assert set(frames.profiles["profile_id"]) == {"mlu1", "mlu2", "mlu3"}


def test_ml1m_layout(tmp_path: Path) -> None:
    frames = read_movielens(ml1m(tmp_path / "ml-1m"))
    assert frames.source == "movielens:ml-1m"
    titles = frames.titles.set_index("title_id")
    assert titles.loc["ml661", "genres"] == ["Animation", "Children", "Musical"]
    assert titles.loc["ml1193", "title"] == "One Flew Over the Cuckoo's Nest"
    assert titles.loc["ml1193", "release_year"] == 1975
    assert frames.counts()["watch_events"] == 3
    first = frames.watch_events.set_index("event_id").loc["ml-1-1193"]
    assert first["ts"] == pd.Timestamp(978300760, unit="s", tz="UTC")


def test_csv_layout_with_tags(tmp_path: Path) -> None:
    frames = read_movielens(ml_csv(tmp_path / "ml-latest-small"))
    assert frames.source == "movielens:ml-latest-small"
    titles = frames.titles.set_index("title_id")
    assert titles.loc["ml1", "tags"] == ["fun", "pixar"]  # lower-cased, stripped, de-duplicated
    assert titles.loc["ml3", "title"] == "American President, The"  # quoted comma kept
    assert titles.loc["ml3", "tags"] == ["politics"]
    assert titles.loc["ml5", "genres"] == []
    assert pd.isna(titles.loc["ml5", "release_year"])
    assert titles.loc["ml1", "maturity_level"] == 3  # unknown maturity -> adults only
    event = frames.watch_events.set_index("event_id").loc["ml-1-3"]
    assert event["position_s"] == round(DEFAULT_MOVIE_DURATION_S * 0.5 / 5)


def test_a_file_inside_the_folder_is_accepted(tmp_path: Path) -> None:
    folder = ml_csv(tmp_path / "ml-25m", tags=False)
    assert detect_layout(folder / "ratings.csv") == ("ml-25m", folder)
    assert read_movielens(folder / "ratings.csv").counts()["watch_events"] == 3


def test_ratings_of_movies_missing_from_movies_file_get_placeholder_titles(tmp_path: Path) -> None:
    folder = ml_csv(tmp_path / "ml", tags=False)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,1\n1,99,3,2\n")
    frames = read_movielens(folder)
    assert "ml99" in set(frames.titles["title_id"])
    assert frames.notes and "placeholder" in frames.notes[0]


def test_load_replaces_dataset_tables(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    load_movielens(ml1m(tmp_path / "ml-1m"), lake)
    report = load_dataset("movielens", ml_csv(tmp_path / "small"), lake)
    assert report.rows["watch_events"] == 3
    assert set(lake.read("titles")["title_id"]) == {"ml1", "ml3", "ml5"}
    assert lake.read("episodes").empty


@pytest.mark.slow
def test_real_ml_latest_small(tmp_path: Path) -> None:
    path = require_shared_data("ml-latest-small")
    lake = Lake(tmp_path / "lake")
    report = load_movielens(path, lake)
    assert report.rows == {"titles": 9742, "episodes": 0, "accounts": 610, "profiles": 610, "watch_events": 100836}
    summary = lake.summary("watch_events")
    assert summary.distinct == {"profile_id": 610, "title_id": 9724}
    assert summary.min_time is not None and summary.min_time.date().isoformat() == "1996-03-29"
    tagged = lake.read("titles").set_index("title_id")
    assert "pixar" in list(tagged.loc["ml1", "tags"])
