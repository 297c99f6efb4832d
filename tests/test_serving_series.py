"""Series in the serving pipeline: models learn from episodes, pages get series.

Watch events name episodes, so the candidate models only know episode ids,
while the catalog, the filters and the API's rows deal in series. Without the
episode → series map every episode candidate was dropped by the catalog filter
(only movies were ever recommended) and "similar to a series" was a 404.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.base import CandidateGenerator, Interactions
from models.bundle import ModelBundle
from models.ranker import NeuralRanker
from models.registry import model_class
from serving.catalog import TitleCatalog
from serving.contract import ViewerContext, WatchedTitle
from serving.pipeline import RecommendationPipeline

T0 = pd.Timestamp("2024-01-01", tz="UTC")
EPISODES = {"s1": ["s1-e1", "s1-e2", "s1-e3"], "s2": ["s2-e1", "s2-e2"], "s3": ["s3-e1"]}
MOVIES = ["m1", "m2", "m3"]


def titles() -> pd.DataFrame:
    ids = [*EPISODES, *MOVIES]
    return pd.DataFrame(
        {
            "title_id": ids,
            "maturity_level": [2, 2, 3, 2, 2, 2],  # s3 is for adults only
            "countries": [[] for _ in ids],
            "genres": [["Drama"] for _ in ids],
        }
    )


def episodes() -> pd.DataFrame:
    rows = [(e, s) for s, eps in EPISODES.items() for e in eps]
    return pd.DataFrame(rows, columns=["episode_id", "series_id"])


def events() -> pd.DataFrame:
    """Twenty profiles binge s1 then s2 (and s3); each also watched one movie."""
    rows = []
    for u in range(20):
        watched = [*EPISODES["s1"], *EPISODES["s2"], *EPISODES["s3"], MOVIES[u % 3]]
        rows += [(f"u{u}", title, T0 + pd.Timedelta(hours=i)) for i, title in enumerate(watched)]
    rows += [("fan", title, T0 + pd.Timedelta(hours=i)) for i, title in enumerate(EPISODES["s1"][:2])]
    frame = pd.DataFrame(rows, columns=["profile_id", "title_id", "ts"])
    frame["position_s"], frame["duration_s"] = 600, 1200
    return frame


def fan(**overrides: object) -> ViewerContext:
    """The context the API sends for ``fan``: the first two episodes of s1, half watched."""
    history = [
        WatchedTitle(title_id=t, ts=T0 + pd.Timedelta(hours=i), progress=0.5) for i, t in enumerate(EPISODES["s1"][:2])
    ]
    fields: dict[str, object] = {
        "profile_id": "fan",
        "history": history,
        "maturity_level": 3,
        "kids": False,
        "country": "US",
    }
    fields.update(overrides)
    return ViewerContext.model_validate(fields)


def anyone() -> ViewerContext:
    return ViewerContext(profile_id="anyone", maturity_level=3, kids=False, country="US")


def fitted(name: str, frame: pd.DataFrame | None = None) -> CandidateGenerator:
    frame = events() if frame is None else frame
    data = Interactions(
        user_ids=frame["profile_id"].to_numpy(dtype=str),
        item_ids=frame["title_id"].to_numpy(dtype=str),
        timestamps=(frame["ts"].astype("int64") // 10**9).to_numpy(dtype=np.int64),
        weights=np.ones(len(frame), dtype=np.float32),
    )
    return model_class(name)().fit(data)  # type: ignore[call-arg,return-value]


@pytest.fixture(scope="module")
def pipeline() -> RecommendationPipeline:
    catalog = TitleCatalog.from_frame(titles(), episodes())
    bundle = ModelBundle(candidates={"popularity": fitted("popularity"), "item_knn": fitted("item_knn")})
    return RecommendationPipeline(bundle, catalog, version="1")


def test_episode_candidates_come_back_as_their_series(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend(fan(), k=4)
    got = [t for t, _ in result.items]
    assert result.source == "model"
    # What the other viewers binge next, as series (s1 too: its third episode is still unwatched).
    assert {"s2", "s3"} <= set(got[:3])
    assert not any("-e" in t for t in got), got
    assert len(got) == len(set(got)), "a series appears once however many episodes were candidates"


def test_filters_and_exclude_judge_the_series(pipeline: RecommendationPipeline) -> None:
    got = [t for t, _ in pipeline.recommend(fan(maturity_level=2, exclude=["s1", "s2"]), k=4).items]
    assert "s3" not in got, "s3 is above level 2: none of its episodes may stand in for it"
    assert not {"s1", "s2"} & set(got), "excluding a series excludes its episodes"


def test_similar_to_a_series_uses_its_episodes(pipeline: RecommendationPipeline) -> None:
    result = pipeline.similar(anyone(), "s1", k=3)
    got = [t for t, _ in result.items]
    assert result.source == "model"
    assert "s1" not in got and not any("-e" in t for t in got)
    assert got[0] in {"s2", "s3"}


def test_similar_titles_come_from_item_to_item_models_not_popularity() -> None:
    # "p" is watched by everyone; "a" and "b" only together, by a few profiles.
    rows = [(f"crowd{u}", "p", T0 + pd.Timedelta(hours=u)) for u in range(30)]
    rows += [(f"fan{u}", t, T0 + pd.Timedelta(hours=u, minutes=i)) for u in range(4) for i, t in enumerate("ab")]
    frame = pd.DataFrame(rows, columns=["profile_id", "title_id", "ts"])
    data = Interactions(
        user_ids=frame["profile_id"].to_numpy(dtype=str),
        item_ids=frame["title_id"].to_numpy(dtype=str),
        timestamps=(frame["ts"].astype("int64") // 10**9).to_numpy(dtype=np.int64),
        weights=np.ones(len(frame), dtype=np.float32),
    )
    # With a ranker the pipeline keeps popularity among its candidate sources: it must not answer "similar".
    columns = ["cand_popularity_rrank", "cand_item_knn_rrank"]
    rng = np.random.default_rng(0)
    x = rng.random((80, 2), dtype=np.float32)
    groups = np.repeat(np.arange(10), 8)
    labels = np.zeros(80, dtype=np.float32)
    labels[::8] = 1.0
    bundle = ModelBundle(
        candidates={name: model_class(name)().fit(data) for name in ("popularity", "item_knn")},  # type: ignore[call-arg,misc]
        ranker=NeuralRanker(hidden=(4,), epochs=1, seed=0).fit(x, groups, labels, columns),
        metadata={"ranker_columns": columns, "ranker_used": True},
    )
    titles = ["p", "a", "b"]
    catalog = TitleCatalog.from_frame(
        pd.DataFrame({"title_id": titles, "maturity_level": [0] * 3, "countries": [[]] * 3, "genres": [[]] * 3})
    )
    pipeline = RecommendationPipeline(bundle, catalog, version="1")
    assert pipeline.ranker is not None and "popularity" in pipeline.generators
    assert [t for t, _ in pipeline.similar(anyone(), "a", k=1).items] == ["b"]


def test_a_generator_that_knows_none_of_the_profiles_titles_is_left_out() -> None:
    catalog = TitleCatalog.from_frame(titles(), episodes())
    full = events()
    blind = fitted("seqknn", full[~full["title_id"].str.startswith("s1-")])  # trained before s1 was added
    knowing = {"popularity": fitted("popularity"), "item_knn": fitted("item_knn")}
    mixed = ModelBundle(candidates={**knowing, "seqknn": blind})
    result = RecommendationPipeline(mixed, catalog, version="1").recommend(fan(), k=3)
    assert result.source == "model", "one model that never saw s1 took the whole page down to popularity"
    assert {"s2", "s3"} & {t for t, _ in result.items}
    only_blind = ModelBundle(candidates={"popularity": fitted("popularity"), "seqknn": blind})
    # Without content tokens no known title can stand in for s1 (``serving.content_neighbours``).
    pipeline = RecommendationPipeline(only_blind, replace(catalog, tokens=[]), version="1")
    fallback = pipeline.recommend(fan(), k=3)
    assert (fallback.source, fallback.reason) == ("fallback", "unknown_history")
    assert pipeline.rank(fan(), ["m1", "s2"]).reason == "unknown_history"
    # With them, s1's episodes are read through the known titles nearest by content (all dramas here).
    standing_in = RecommendationPipeline(only_blind, catalog, version="1")
    assert standing_in.content.of("s1-e1") and standing_in.recommend(fan(), k=3).source == "model"


def test_similar_to_a_series_whose_first_episodes_no_model_knows() -> None:
    """Viewers joined a long series at its fourth episode: "Because you watched" still finds its neighbours."""
    series = {"long": [f"long-e{i}" for i in range(1, 6)]}
    catalog_titles = pd.DataFrame(
        {"title_id": ["long", *MOVIES], "maturity_level": [2] * 4, "countries": [[]] * 4, "genres": [["Drama"]] * 4}
    )
    catalog_episodes = pd.DataFrame([(e, "long") for e in series["long"]], columns=["episode_id", "series_id"])
    rows = []
    for u in range(20):
        for i, title in enumerate(["long-e4", "long-e5", "m2" if u % 4 else "m3"]):
            rows.append((f"u{u}", title, T0 + pd.Timedelta(hours=i)))
    frame = pd.DataFrame(rows, columns=["profile_id", "title_id", "ts"])
    frame["position_s"], frame["duration_s"] = 600, 1200
    catalog = TitleCatalog.from_frame(catalog_titles, catalog_episodes)
    bundle = ModelBundle(candidates={"popularity": fitted("popularity", frame), "item_knn": fitted("item_knn", frame)})
    result = RecommendationPipeline(bundle, catalog, version="1").similar(anyone(), "long", k=2)
    assert result.source == "model" and result.items[0][0] == "m2"


def test_a_watched_series_counts_through_its_episodes(pipeline: RecommendationPipeline) -> None:
    """A history that names the series (an onboarding like, a watch posted for the series) reaches the models."""
    liked = ViewerContext(
        profile_id="liker",
        history=[WatchedTitle(title_id="s1", ts=T0, progress=1.0, completed=True)],
        maturity_level=3,
        kids=False,
        country="US",
    )
    result = pipeline.recommend(liked, k=3)
    got = [t for t, _ in result.items]
    assert result.source == "model", result.reason  # before: no model knew "s1", so popularity
    assert "s1" not in got and got[0] in {"s2", "s3"}
    assert pipeline._model_history(["m1", "s1", "s1-e2"]) == ["m1", "s1-e1", "s1-e3", "s1", "s1-e2"]
