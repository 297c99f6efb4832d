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


def test_lists_from_a_history_are_the_fitted_lists_for_a_model_that_scores_the_history() -> None:
    """item-kNN scores a user from its history, so lists asked with the history equal the fitted user's lists."""
    from training.candidates import candidate_lists
    from training.evaluation import fit_model
    from training.foldin import histories_of
    from training.foldin_ranked import foldin_candidate_lists

    train = clustered(20)
    model = fit_model("item_knn", {}, train)
    users = sorted(train["user_id"].unique())[:8]
    fitted = candidate_lists({"item_knn": model}, users, 5).sort_values(["user_id", "rank"], ignore_index=True)
    asked = foldin_candidate_lists({"item_knn": model}, histories_of(train, users), 5)
    asked = asked.sort_values(["user_id", "rank"], ignore_index=True)
    assert len(fitted) == 8 * 5
    pd.testing.assert_frame_equal(asked, fitted, check_dtype=False)


def test_a_source_that_knows_no_title_of_a_history_proposes_nothing() -> None:
    from training.evaluation import fit_model
    from training.foldin_ranked import foldin_candidate_lists

    model = fit_model("item_knn", {}, clustered(20))
    lists = foldin_candidate_lists({"item_knn": model}, {"new": ["never-seen"], "u0": ["c0-1", "c0-2"]}, 5)
    assert set(lists["user_id"]) == {"u0"}
    assert not set(lists["title_id"]) & {"c0-1", "c0-2"}, "the history's own titles are not proposed"


def test_the_champion_ranked_list_serves_users_b_from_their_history() -> None:
    """The ranker over item-kNN and popularity, fold-in vs refit, on the clustered data."""
    from training.foldin_ranked import evaluate_champion_foldin

    data = clustered(120)
    result = evaluate_champion_foldin(data, ("item_knn", "popularity"), heldout_share=0.25, seed=1, k=10)
    popular = evaluate_champion_foldin(data, ("popularity",), heldout_share=0.25, seed=1, k=10)
    assert result["users"] == 30
    for key in ("foldin", "refit", "foldin_fitted_lists", "refit_ranker_a"):
        assert 0.0 <= result[key] <= 1.0
    # users B were never trained on, yet the ranked list finds their cluster: far above a ranker of popularity alone
    assert result["foldin"] > popular["foldin"] + 0.3
    assert result["ratio"] == pytest.approx(result["foldin"] / result["refit"])


class _Recorder:
    """A generator double that records what it was asked and proposes every title it knows, in id order."""

    def __init__(self, titles: list[str]) -> None:
        self.titles = titles
        self.asked: list[tuple[list[str], list[str]]] = []

    def recommend(self, user_id: str, n: int = 10, *, history=None, filter_seen=True, exclude=()):  # type: ignore[no-untyped-def]
        from models.base import Recommendation

        self.asked.append((list(history or []), list(exclude)))
        blocked = set(exclude) | (set(history or []) if filter_seen else set())
        ids = [t for t in self.titles if t not in blocked][:n]
        return Recommendation(item_ids=np.array(ids, dtype=object), scores=np.linspace(1.0, 0.5, len(ids)))


def test_a_foldin_request_carries_what_the_model_server_gets_and_the_older_titles_stay_out() -> None:
    """A history longer than ``MAX_HISTORY``: the model sees the newest titles only, as served, and no title
    of the rest comes back (the API's page drops every played title)."""
    from core.rules import MAX_HISTORY
    from training.foldin import recommend_from_history

    history = [f"t{i}" for i in range(MAX_HISTORY + 30)] + ["t3"]  # t3 watched again last: it is among the newest
    model = _Recorder([f"t{i}" for i in range(MAX_HISTORY + 60)])
    rec = recommend_from_history(model, history, 40)  # type: ignore[arg-type]
    asked, excluded = model.asked[0]
    assert len(asked) == MAX_HISTORY and asked[-1] == "t3" and asked[0] == f"t{31}"
    assert set(excluded) == set(history) - set(asked) and "t3" not in excluded
    assert rec is not None
    assert not set(rec.item_ids.tolist()) & set(history)
    assert rec.item_ids.tolist()[:3] == [f"t{MAX_HISTORY + 30}", f"t{MAX_HISTORY + 31}", f"t{MAX_HISTORY + 32}"]
