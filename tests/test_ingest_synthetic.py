"""The synthetic generator: determinism, sizes, and the behaviours models are meant to learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInputError
from core.lake import Lake
from features.ingest.frames import DATASET_TABLES, DatasetFrames, to_tables
from features.ingest.synthetic import SyntheticConfig, generate, generate_frames

CONFIG = SyntheticConfig(seed=7, n_titles=300, n_profiles=600, n_events=30_000)


@pytest.fixture(scope="module")
def frames() -> DatasetFrames:
    return generate_frames(CONFIG)


@pytest.fixture(scope="module")
def joined(frames: DatasetFrames) -> pd.DataFrame:
    """Events with the watched title's series (or movie) attributes and the profile's."""
    titles = frames.titles.set_index("title_id")
    episodes = frames.episodes.set_index("episode_id")
    events = frames.watch_events.copy()
    events["series_id"] = events["title_id"].map(episodes["series_id"]).fillna(events["title_id"])
    for column in ("maturity_level", "countries", "date_added", "genres", "type"):
        events[f"t_{column}"] = events["series_id"].map(titles[column])
    events["episode_number"] = events["title_id"].map(episodes["episode_number"])
    events["season_number"] = events["title_id"].map(episodes["season_number"])
    profiles = frames.profiles.set_index("profile_id")
    events["p_level"] = events["profile_id"].map(profiles["maturity_level"])
    events["p_country"] = events["profile_id"].map(profiles["country"])
    return events


def test_same_seed_same_tables_other_seed_other_events(frames: DatasetFrames) -> None:
    again = generate_frames(CONFIG)
    for name in DATASET_TABLES:
        pd.testing.assert_frame_equal(frames.table(name), again.table(name), obj=name)
    other = generate_frames(SyntheticConfig(seed=8, n_titles=300, n_profiles=600, n_events=30_000))
    assert not frames.watch_events["title_id"].equals(other.watch_events["title_id"])


def test_sizes_and_valid_lake_tables(frames: DatasetFrames) -> None:
    counts = frames.counts()
    assert (counts["titles"], counts["profiles"], counts["watch_events"]) == (300, 600, 30_000)
    tables = to_tables(frames)  # raises if any frame breaks its lake schema
    assert tables["watch_events"].num_rows == 30_000
    sizes = frames.profiles.groupby("account_id").size()
    assert sizes.between(1, 5).all() and sizes.sum() == 600
    assert set(frames.profiles["account_id"]) == set(frames.accounts["account_id"])


def test_scale_knob() -> None:
    config = SyntheticConfig(scale=0.5, n_events=10)
    assert (config.titles, config.profiles, config.events) == (2_500, 10_000, 10)
    assert SyntheticConfig().events == 1_000_000


@pytest.mark.parametrize(
    "bad",
    [{"scale": 0}, {"n_events": 0}, {"kids_share": 1.5}, {"countries": ("USA",)}, {"days": 0}],
)
def test_invalid_config_says_what_is_wrong(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        SyntheticConfig(**bad)  # type: ignore[arg-type]
    assert next(iter(bad)) in str(caught.value)


def test_kids_profiles_watch_only_titles_at_or_below_their_level(frames: DatasetFrames, joined: pd.DataFrame) -> None:
    kids = frames.profiles[frames.profiles["is_kids"]]
    assert 0.05 < len(kids) / len(frames.profiles) < 0.3
    assert (kids["maturity_level"] <= 1).all()
    first = frames.profiles.groupby("account_id").head(1)
    assert not first["is_kids"].any()  # the account holder is an adult
    assert (joined["t_maturity_level"] <= joined["p_level"]).all()
    assert (joined["p_level"] <= 1).sum() > 100  # kids do watch


def test_licensing_and_release_dates_are_respected(joined: pd.DataFrame) -> None:
    licensed = [len(c) == 0 or p in list(c) for c, p in zip(joined["t_countries"], joined["p_country"], strict=True)]
    assert all(licensed)
    assert (joined["ts"] >= joined["t_date_added"]).all()
    assert (joined["country"] == joined["p_country"]).all()


def test_series_are_watched_in_binge_runs_of_consecutive_episodes(joined: pd.DataFrame) -> None:
    episodes = joined[joined["episode_number"].notna()].sort_values(["profile_id", "ts"])
    assert len(episodes) > 0.2 * len(joined)
    same = (episodes["profile_id"].shift(-1) == episodes["profile_id"]) & (
        episodes["series_id"].shift(-1) == episodes["series_id"]
    )
    next_episode = same & (
        (
            (episodes["season_number"].shift(-1) == episodes["season_number"])
            & (episodes["episode_number"].shift(-1) == episodes["episode_number"] + 1)
        )
        | (
            (episodes["season_number"].shift(-1) == episodes["season_number"] + 1)
            & (episodes["episode_number"].shift(-1) == 1)
        )
    )
    assert next_episode.mean() > 0.5
    gap = (episodes["ts"].shift(-1) - episodes["ts"]).dt.total_seconds()
    assert (gap[next_episode] >= episodes["position_s"][next_episode]).all()  # the next starts after this one


def test_a_profile_watches_one_thing_at_a_time(frames: DatasetFrames) -> None:
    events = frames.watch_events.sort_values(["profile_id", "ts"])
    ends = events["ts"] + pd.to_timedelta(events["position_s"], unit="s")
    same_profile = events["profile_id"].shift(-1) == events["profile_id"]
    assert not (same_profile & (events["ts"].shift(-1) < ends)).any()


def test_weekly_seasonality_and_window(joined: pd.DataFrame) -> None:
    per_day = joined["ts"].dt.dayofweek.value_counts()
    assert per_day[5] > 1.2 * per_day[1]  # Saturdays busier than Tuesdays
    assert joined["ts"].min() >= pd.Timestamp("2024-01-01", tz="UTC")
    assert joined["ts"].max() < pd.Timestamp("2025-01-01 12:00", tz="UTC")
    evening = joined["ts"].dt.hour.between(19, 22).mean()
    assert evening > 0.3


def test_new_releases_spike_then_decay(joined: pd.DataFrame) -> None:
    new = joined[joined["t_date_added"] >= pd.Timestamp("2024-01-01", tz="UTC")]
    age_days = (new["ts"] - new["t_date_added"]).dt.days
    early, later = (age_days < 14).sum(), age_days.between(60, 73).sum()
    assert early > 2 * later


def test_popularity_is_skewed(joined: pd.DataFrame) -> None:
    per_title = joined["series_id"].value_counts()
    top = per_title.head(max(1, len(per_title) // 20)).sum()
    assert top / per_title.sum() > 0.15  # the top 5% of titles take over three times their even share
    bottom_half = per_title.tail(len(per_title) // 2).sum()
    assert bottom_half / per_title.sum() < 0.25


def test_profiles_have_genre_tastes(joined: pd.DataFrame) -> None:
    first_genre = joined["t_genres"].map(lambda g: g[0])

    def concentration(profile: pd.Series) -> float:
        counts = pd.crosstab(profile, first_genre)
        active = counts[counts.sum(axis=1) >= 20]
        return float((active.max(axis=1) / active.sum(axis=1)).mean())

    shuffled = pd.Series(np.random.default_rng(0).permutation(joined["profile_id"].to_numpy()), index=joined.index)
    assert concentration(joined["profile_id"]) > concentration(shuffled) + 0.15


def test_partial_progress_and_abandonment(frames: DatasetFrames) -> None:
    progress = frames.watch_events["position_s"] / frames.watch_events["duration_s"]
    assert progress.between(0, 1).all()
    assert 0.05 < (progress < 0.6).mean() < 0.4
    assert (progress >= 0.9).mean() > 0.5


def test_generate_writes_the_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    report = generate(lake, SyntheticConfig(seed=1, n_titles=50, n_profiles=40, n_events=500))
    assert report.rows["watch_events"] == 500
    assert lake.summary("watch_events").rows == 500
    assert len(lake.read("episodes")) == report.rows["episodes"] > 0


def _ndcg10(recommended: np.ndarray, held_out: list[set[int]]) -> float:
    discounts = 1 / np.log2(np.arange(2, 12))
    scores = []
    for row, truth in zip(recommended, held_out, strict=True):
        gains = np.array([item in truth for item in row[:10]], dtype=float)
        scores.append(float(gains @ discounts[: len(gains)]) / float(discounts[: min(10, len(truth))].sum()))
    return float(np.mean(scores))


@pytest.mark.slow
def test_a_collaborative_model_beats_popularity() -> None:
    """The history carries personal signal: implicit ALS beats most-popular on a per-profile temporal split."""
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares

    data = generate_frames(SyntheticConfig(seed=11, n_titles=1_000, n_profiles=4_000, n_events=200_000))
    series = data.episodes.set_index("episode_id")["series_id"]
    events = data.watch_events.assign(item=lambda f: f["title_id"].map(series).fillna(f["title_id"]))
    events = events.sort_values("ts").drop_duplicates(["profile_id", "item"], keep="last")
    events = events[events.groupby("profile_id")["item"].transform("size") >= 5]
    rank = events.groupby("profile_id").cumcount()
    size = events.groupby("profile_id")["item"].transform("size")
    is_test = rank >= size - np.ceil(0.2 * size)
    train, test = events[~is_test], events[is_test]
    users, items = pd.Index(train["profile_id"].unique()), pd.Index(train["item"].unique())
    test = test[test["item"].isin(items) & test["profile_id"].isin(users)]
    matrix = sp.csr_matrix(
        (np.ones(len(train)), (users.get_indexer(train["profile_id"]), items.get_indexer(train["item"]))),
        shape=(len(users), len(items)),
    )
    held = test.groupby("profile_id")["item"].agg(lambda s: set(items.get_indexer(s)))
    rows = users.get_indexer(held.index)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    popular = []
    for row in rows:
        score = popularity.astype(float)
        score[matrix[row].indices] = -np.inf
        popular.append(np.argsort(-score, kind="stable")[:10])
    model = AlternatingLeastSquares(factors=32, regularization=0.1, iterations=10, random_state=0)
    model.fit(matrix * 10.0, show_progress=False)
    als, _ = model.recommend(rows, matrix[rows], N=10, filter_already_liked_items=True)
    pop_ndcg, als_ndcg = _ndcg10(np.array(popular), list(held)), _ndcg10(als, list(held))
    assert als_ndcg > 1.5 * pop_ndcg, (als_ndcg, pop_ndcg)
