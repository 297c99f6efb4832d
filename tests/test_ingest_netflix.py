"""Netflix-titles catalog: parsing rules, synthetic episodes and history, and the real CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import require_shared_data
from ingest_files import netflix

from core.domain import MaturityLevel
from core.lake import Lake
from features.ingest.netflix import load_netflix_titles, read_netflix_titles
from features.ingest.synthetic import SyntheticConfig


def test_catalog_rows(tmp_path: Path) -> None:
    frames = read_netflix_titles(netflix(tmp_path))
    titles = frames.titles.set_index("title_id")
    movie = titles.loc["nf1"]
    assert movie["type"] == "movie"
    assert movie["duration_s"] == 90 * 60
    assert movie["date_added"] == pd.Timestamp("2021-09-25", tz="UTC")
    assert movie["maturity_level"] == MaturityLevel.TEENS
    assert movie["countries"] == ["US"]
    assert movie["synopsis"] == "A film, with commas."
    show = titles.loc["nf2"]
    assert show["type"] == "series"
    assert show["date_added"] == pd.Timestamp("2021-09-24", tz="UTC")
    assert show["genres"] == ["International TV Shows", "TV Dramas"]
    assert show["cast"] == ["Ama Qamata", "Khosi Ngema"]
    assert show["countries"] == ["ZA"]
    kids = titles.loc["nf3"]
    assert kids["maturity_level"] == MaturityLevel.LITTLE_KIDS
    assert kids["countries"] == []  # no country: licensed everywhere
    assert pd.isna(kids["date_added"])
    quirk = titles.loc["nf4"]  # runtime found in the rating column
    assert quirk["duration_s"] == 74 * 60
    assert quirk["maturity_level"] == MaturityLevel.ADULTS
    assert any("runtime" in note for note in frames.notes)
    assert frames.watch_events.empty and frames.profiles.empty


def test_series_get_two_seasons_of_episodes(tmp_path: Path) -> None:
    frames = read_netflix_titles(netflix(tmp_path))
    episodes = frames.episodes
    assert set(episodes["series_id"]) == {"nf2"}
    assert sorted(episodes["season_number"].unique()) == [1, 2]
    per_season = episodes.groupby("season_number")["episode_number"].agg(["min", "max", "count"])
    assert (per_season["min"] == 1).all() and (per_season["max"] == per_season["count"]).all()
    assert per_season["count"].between(6, 12).all()
    again = read_netflix_titles(netflix(tmp_path / "again"))
    pd.testing.assert_frame_equal(episodes, again.episodes)  # deterministic


def test_synthetic_history_over_the_catalog(tmp_path: Path) -> None:
    config = SyntheticConfig(seed=3, n_profiles=50, n_events=2_000, countries=("US", "ZA"))
    lake = Lake(tmp_path / "lake")
    report = load_netflix_titles(netflix(tmp_path), lake, synthetic_history=config)
    assert report.rows["watch_events"] == 2_000
    events = lake.read("watch_events")
    episode_ids = set(lake.read("episodes")["episode_id"])
    watched = set(events["title_id"])
    assert watched <= episode_ids | {"nf1", "nf3", "nf4"}
    assert "nf2" not in watched  # series are watched episode by episode
    # the window ends at the latest date_added, so the newest titles are new releases
    assert events["ts"].max() <= pd.Timestamp("2021-09-26 12:00", tz="UTC")


@pytest.mark.slow
def test_real_netflix_titles(tmp_path: Path) -> None:
    path = require_shared_data("netflix-titles/netflix_titles.csv")
    lake = Lake(tmp_path / "lake")
    report = load_netflix_titles(path, lake)
    assert report.rows["titles"] == 8_807
    titles = lake.read("titles")
    assert (titles["type"] == "movie").sum() == 6_131
    assert (titles["type"] == "series").sum() == 2_676
    assert lake.read("episodes")["series_id"].nunique() == 2_676
    assert titles["date_added"].notna().sum() == 8_797
    assert len(report.notes) == 1  # the three shifted runtimes, nothing else
