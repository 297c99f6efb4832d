"""LightFM hybrid: a title nobody has watched yet is recommended to profiles whose tastes match its features."""

from __future__ import annotations

import numpy as np

from models.base import Interactions
from models.lightfm_hybrid import LightFMHybrid, profile_tokens, title_tokens


def genre_world(seed: int = 0) -> tuple[Interactions, dict[str, list[str]]]:
    """Horror fans watch horror titles, comedy fans comedy titles; ``new-horror`` has features and no watch."""
    rng = np.random.default_rng(seed)
    features = {f"h{k}": title_tokens(genres=["Horror"], release_year=2019, maturity_level=3) for k in range(8)}
    features |= {f"c{k}": title_tokens(genres=["Comedy"], release_year=2001, maturity_level=1) for k in range(8)}
    features["new-horror"] = title_tokens(genres=["Horror"], release_year=2020, maturity_level=3)
    users, items = [], []
    for group, prefix in (("hf", "h"), ("cf", "c")):
        for u in range(25):
            for k in rng.permutation(8)[:5]:
                users.append(f"{group}{u}")
                items.append(f"{prefix}{k}")
    n = len(users)
    data = Interactions(
        user_ids=np.array(users),
        item_ids=np.array(items),
        timestamps=np.arange(n, dtype=np.int64) + 1_600_000_000,
        weights=np.ones(n, np.float32),
    )
    return data, features


def test_cold_start_title_reaches_the_profiles_whose_tastes_match_its_features() -> None:
    data, features = genre_world()
    model = LightFMHybrid(no_components=8, epochs=30, seed=0).fit(data, item_features=features)
    assert "new-horror" in model.item_ids.tolist(), "a title known only by its features joins the catalog"
    # Each fan has 3 unseen titles of their genre: the new horror title should join them for
    # horror fans (top 4) and stay below all of them for comedy fans (not in the top 3).
    horror_hits = sum("new-horror" in model.recommend(f"hf{u}", n=4).item_ids.tolist() for u in range(25))
    comedy_hits = sum("new-horror" in model.recommend(f"cf{u}", n=3).item_ids.tolist() for u in range(25))
    assert horror_hits >= 20, f"only {horror_hits}/25 horror fans were offered the new horror title"
    assert comedy_hits == 0, f"{comedy_hits}/25 comedy fans were offered the new horror title"


def test_cold_start_title_is_not_recommendable_without_features() -> None:
    data, _ = genre_world()
    model = LightFMHybrid(no_components=8, epochs=5).fit(data)
    assert "new-horror" not in model.item_ids.tolist()


def test_feature_tokens_describe_titles_and_profiles() -> None:
    tokens = title_tokens(
        genres=["Drama"], maturity_level=2, release_year=1994, cast=["A", "B"], director=["D"], tags=["Heist"]
    )
    assert tokens == ["genre:Drama", "maturity:2", "decade:1990", "cast:A", "cast:B", "director:D", "tag:heist"]
    assert profile_tokens(maturity_level=1, country="FR", is_kids=True) == ["kids", "maturity:1", "country:FR"]


def test_profile_features_are_used_for_users() -> None:
    data, features = genre_world()
    users = {f"hf{u}": profile_tokens(maturity_level=3) for u in range(25)}
    model = LightFMHybrid(no_components=8, epochs=10).fit(data, item_features=features, user_features=users)
    rec = model.recommend("hf0", n=3)
    assert all(i.startswith("h") or i == "new-horror" for i in rec.item_ids.tolist())
