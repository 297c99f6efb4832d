"""MovieTweetings loader: small files with a repeated rating, and the real 100K snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_shared_data
from ingest_files import movietweetings

from core.lake import Lake
from features.ingest.movietweetings import load_movietweetings, read_movietweetings
from features.ingest.ratings import DEFAULT_MOVIE_DURATION_S


def test_small_files(tmp_path: Path) -> None:
    frames = read_movietweetings(movietweetings(tmp_path / "mt"))
    titles = frames.titles.set_index("title_id")
    assert titles.loc["tt0114709", "genres"] == ["Animation", "Comedy"]
    assert titles.loc["tt0113497", "genres"] == []  # empty genre field
    assert titles.loc["tt0113497", "release_year"] == 1995
    events = frames.watch_events.set_index("event_id")
    # user 2 rated tt0114709 twice: the later one gets a "-2" suffix, both are kept
    assert {"mt-2-0114709", "mt-2-0114709-2"} <= set(events.index)
    assert events.loc["mt-2-0114709-2", "rating"] == 9.0
    assert events.loc["mt-1-0113497", "position_s"] == DEFAULT_MOVIE_DURATION_S  # 10/10 = complete
    assert events.loc["mt-1-0114709", "position_s"] == round(DEFAULT_MOVIE_DURATION_S * 0.7)
    assert set(frames.profiles["profile_id"]) == {"mtu1", "mtu2"}
    assert set(frames.accounts["account_id"]) == {"mta1", "mta2"}


def test_short_imdb_ids_are_zero_padded(tmp_path: Path) -> None:
    folder = movietweetings(tmp_path / "mt")
    (folder / "ratings.dat").write_text("1::114709::7::1365029107\n")
    frames = read_movietweetings(folder)
    assert list(frames.watch_events["title_id"]) == ["tt0114709"]


@pytest.mark.slow
def test_real_movietweetings(tmp_path: Path) -> None:
    path = require_shared_data("movietweetings-100k")
    lake = Lake(tmp_path / "lake")
    report = load_movietweetings(path, lake)
    assert report.rows["watch_events"] == 100_000
    assert report.rows["titles"] == 10_506
    assert report.rows["profiles"] == 16_554
    summary = lake.summary("watch_events")
    assert summary.min_time is not None and summary.min_time.year == 2013
    assert not report.notes
