"""The fold-in protocol (``training.foldin``): held-out users served from their history alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInputError
from training.foldin import evaluate_foldin, foldin_split


def clustered(n_users: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two taste clusters of 12 titles each; every user watches 10 titles of its cluster in a random order."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = u % 2
        titles = rng.permutation([f"c{cluster}-{i}" for i in range(12)])[:10]
        rows += [(f"u{u}", t, 1_000 * u + j, 1.0) for j, t in enumerate(titles)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "weight"])


def test_split_keeps_heldout_users_out_of_the_foldin_training_data() -> None:
    fold = foldin_split(clustered(), heldout_share=0.25, seed=1)
    assert len(fold.heldout) == 15
    assert not set(fold.heldout) & set(fold.train_a["user_id"])
    histories = fold.histories()
    assert set(histories) == set(fold.heldout)
    train = fold.split.train
    for user, history in histories.items():
        rows = train[train["user_id"] == user].sort_values("ts")
        assert history == rows["item_id"].tolist(), "the request history is the user's train part, oldest first"
    assert set(fold.relevant()) <= set(fold.heldout)
    with pytest.raises(InvalidInputError, match="heldout_share"):
        foldin_split(clustered(), heldout_share=1.0)


def test_a_history_given_at_request_time_finds_the_users_cluster() -> None:
    results = evaluate_foldin(clustered(), ["item_knn", "popularity"], heldout_share=0.25, seed=1)
    knn = results["item_knn"]
    assert knn["users"] == 15
    assert 0.0 <= knn["foldin"] <= 1.0 and 0.0 <= knn["refit"] <= 1.0
    # users B were never trained on, yet their own cluster comes first: far above popularity
    assert knn["foldin"] > 0.5
    assert knn["foldin"] > results["popularity"]["foldin"] + 0.2
    assert knn["ratio"] == pytest.approx(knn["foldin"] / knn["refit"])
