"""LightFM's fold-in: a viewer known only by a history gets a user vector like a refit's.

WARP places users by ranking, not by squared error, so the least-squares solve against the
item vectors lands in a rotated, rescaled copy of the fitted users' space; the fold-in map
(``LightFMHybrid._fit_fold_map``) is learnt from the users the model knows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.base import Interactions
from models.lightfm_hybrid import LightFMHybrid


def tastes(n_users: int = 240, n_items: int = 120, seed: int = 0) -> Interactions:
    """Users with a latent taste over 4 genres watch 12–30 titles drawn by taste × popularity."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, 4, n_items)
    popularity = rng.pareto(1.5, n_items) + 1.0
    rows = []
    for u in range(n_users):
        taste = rng.dirichlet(np.full(4, 0.3))
        weights = taste[genre] * popularity
        chosen = rng.choice(n_items, size=int(rng.integers(12, 31)), replace=False, p=weights / weights.sum())
        rows += [(f"u{u}", f"t{i}", 1_000 * u + j) for j, i in enumerate(chosen)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    return Interactions(
        user_ids=frame["user_id"].to_numpy(np.str_),
        item_ids=frame["item_id"].to_numpy(np.str_),
        timestamps=frame["ts"].to_numpy(np.int64),
        weights=np.ones(len(frame), np.float32),
    )


def _fitted() -> tuple[LightFMHybrid, Interactions]:
    data = tastes()
    model = LightFMHybrid(no_components=16, epochs=15, seed=1)
    model.fit(data)
    return model, data


def _history(data: Interactions, user: str) -> list[str]:
    return data.item_ids[data.user_ids == user].tolist()


def test_the_fold_in_map_brings_a_known_users_vector_close_to_the_fitted_one() -> None:
    model, data = _fitted()
    assert model._fold_map is not None
    hist = model.history
    users = [f"u{u}" for u in range(0, 240, 3)]

    def errors() -> list[float]:
        out = []
        for user in users:
            idx = hist.users.get(user)
            fitted = model._user_emb[idx]
            folded = model._fold_in(hist.items.known_idx(_history(data, user)))
            out.append(float(np.linalg.norm(folded - fitted) / np.linalg.norm(fitted)))
        return out

    mapped = errors()
    saved, model._fold_map = model._fold_map, None
    solved = errors()
    model._fold_map = saved
    # The solve alone is off in scale and direction; through the map it is far closer.
    assert np.median(mapped) < 0.6 * np.median(solved)


def test_lists_from_a_history_agree_with_the_fitted_lists_more_through_the_map() -> None:
    model, data = _fitted()
    users = [f"u{u}" for u in range(0, 240, 3)]

    def overlap() -> float:
        shared = []
        for user in users:
            fitted = set(model.recommend(user, 10).item_ids.tolist())
            folded = set(model.recommend(user, 10, history=_history(data, user)).item_ids.tolist())
            shared.append(len(fitted & folded) / 10)
        return float(np.mean(shared))

    mapped = overlap()
    saved, model._fold_map = model._fold_map, None
    solved = overlap()
    model._fold_map = saved
    assert mapped > solved + 0.08


def test_the_map_is_saved_with_the_model_and_an_older_bundle_still_folds_in(tmp_path: Path) -> None:
    model, data = _fitted()
    history = _history(data, "u7")
    model.save(tmp_path / "lightfm")
    loaded = LightFMHybrid.load(tmp_path / "lightfm")
    before = model.recommend("new-viewer", 10, history=history)
    after = loaded.recommend("new-viewer", 10, history=history)
    assert after.item_ids.tolist() == before.item_ids.tolist()
    np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5)
    # A bundle written before the map existed has no ``fold_map`` array: the plain solve serves.
    state = dict(np.load(tmp_path / "lightfm" / "state.npz"))
    del state["fold_map"]
    np.savez(tmp_path / "lightfm" / "state.npz", **state)
    older = LightFMHybrid.load(tmp_path / "lightfm")
    assert isinstance(older, LightFMHybrid) and older._fold_map is None
    assert len(older.recommend("new-viewer", 10, history=history).item_ids) == 10
