"""The ranker's in-memory point-in-time features equal Feast's offline retrieval (``ranker_v1``).

Training computes features with an as-of join over the feature tables because
Feast's offline retrieval of several hundred thousand rows would eat the time
budget; this test pins the two together on a small lake with a real Feast
SQLite repo, so the ranker trains on exactly what the feature service defines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.lake import Lake
from core.settings import Settings
from features.ingest.synthetic import SyntheticConfig, generate
from features.pipelines import build_feature_tables, compute_feature_tables
from features.retrieval import training_frame
from features.store import open_store
from training.ranker_data import GENRE_MATCH, point_in_time_features


@pytest.mark.slow
def test_in_memory_features_match_feast_point_in_time_join(settings: Settings) -> None:
    lake = Lake(settings.workspace.lake_dir)
    generate(lake, SyntheticConfig(seed=11, n_titles=40, n_profiles=30, n_events=1_500))
    events = lake.read("watch_events")
    titles = lake.read("titles")
    episodes = lake.read_or_empty("episodes", ["episode_id", "series_id"])
    series_of = dict(zip(episodes["episode_id"], episodes["series_id"], strict=True))
    store = open_store(settings)
    build_feature_tables(lake, settings.workspace.feast_dir)
    tables = compute_feature_tables(
        events[["profile_id", "title_id", "ts", "position_s", "duration_s"]], titles, episodes
    ).tables

    rng = np.random.default_rng(0)
    sample = events.iloc[rng.choice(len(events), size=60, replace=False)]
    entity = pd.DataFrame(
        {
            "profile_id": sample["profile_id"].astype(str).to_numpy(),
            "title_id": sample["title_id"].map(lambda t: series_of.get(t, t)).astype(str).to_numpy(),
            # Mid-history times and a time before any data, where every feature must be missing.
            "event_timestamp": pd.to_datetime(sample["ts"], utc=True).to_numpy(),
        }
    )
    entity.loc[0, "event_timestamp"] = pd.Timestamp("2000-01-01", tz="UTC")

    ours = point_in_time_features(entity, tables)
    feast = training_frame(store, entity, "ranker_v1")
    assert GENRE_MATCH in ours.columns and ours[GENRE_MATCH].max() > 0
    for column in ours.columns:
        assert column in feast.columns, column
        expected = pd.to_numeric(feast[column], errors="coerce").to_numpy(np.float64)
        np.testing.assert_allclose(
            np.nan_to_num(ours[column].to_numpy(np.float64), nan=-1.0),
            np.nan_to_num(expected, nan=-1.0),
            rtol=1e-5,
            atol=1e-6,
            err_msg=column,
        )
    # Real values were compared (not only missing ones), and nothing leaks from the future.
    assert ours["plays_total"].max() > 0 and ours["title_plays_total"].max() > 0
    assert ours.loc[0, "plays_total"] in (0, None) or np.isnan(ours.loc[0, "plays_total"])
