"""The training pipeline feeds title metadata to the hybrid model, episodes through their series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.ingest.synthetic import SyntheticConfig, generate_frames
from training.candidates import fit_candidates, item_feature_tokens
from training.protocol import interactions_from_events


def test_episodes_get_their_series_tokens() -> None:
    titles = pd.DataFrame(
        {
            "title_id": ["s1", "m1"],
            "type": ["series", "movie"],
            "genres": [["Drama"], ["Comedy"]],
            "maturity_level": [3, 0],
            "release_year": [2020, 1999],
        }
    )
    episodes = pd.DataFrame({"episode_id": ["s1-e1", "s1-e2", "x-e1"], "series_id": ["s1", "s1", "unknown"]})
    tokens = item_feature_tokens(titles, episodes)
    assert tokens["s1-e1"] == tokens["s1"] == tokens["s1-e2"]
    assert tokens["s1"] != tokens["m1"]
    assert any("Drama" in token for token in tokens["s1"])
    assert "x-e1" not in tokens, "an episode of an unknown series gets no invented tokens"
    assert item_feature_tokens(titles.iloc[0:0], episodes) == {}


def test_title_metadata_changes_what_lightfm_learns() -> None:
    frames = generate_frames(SyntheticConfig(seed=5, n_titles=60, n_profiles=80, n_events=3_000))
    train = interactions_from_events(frames.watch_events)
    tokens = item_feature_tokens(frames.titles, frames.episodes)
    assert set(train["item_id"]) & set(tokens), "the synthetic items have metadata tokens"

    plain = fit_candidates(["lightfm"], train, seed=1)["lightfm"].model
    hybrid = fit_candidates(["lightfm"], train, seed=1, item_features=tokens)["lightfm"].model
    again = fit_candidates(["lightfm"], train, seed=1, item_features=tokens)["lightfm"].model
    user = str(train["user_id"].iloc[0])
    assert np.array_equal(hybrid.recommend(user, 10).item_ids, again.recommend(user, 10).item_ids)
    assert not np.allclose(plain.recommend(user, 10).scores, hybrid.recommend(user, 10).scores)
