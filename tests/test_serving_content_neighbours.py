"""A history title no served model knows stands in via its content neighbours (issue 14).

The world: comedies ``c1..c6`` watched together by many profiles (so popularity
starts with them), dramas ``d1..d6`` watched together by a few. ``new-drama`` is
in the catalog (a drama by ``d1``'s director) but nobody played it in the training
data; ``blank`` is in the catalog with no metadata at all; ``new-show`` is a series
whose episodes nobody played.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.errors import NotFoundError
from models.base import CandidateGenerator, Interactions
from models.bundle import ModelBundle
from models.registry import model_class
from serving import content_neighbours
from serving.catalog import TitleCatalog
from serving.contract import ViewerContext, WatchedTitle
from serving.pipeline import RecommendationPipeline

T0 = pd.Timestamp("2024-01-01", tz="UTC")
COMEDIES = [f"c{i}" for i in range(1, 7)]
DRAMAS = [f"d{i}" for i in range(1, 7)]
NEW_SHOW = ["new-show-e1", "new-show-e2"]


def titles() -> pd.DataFrame:
    rows: list[tuple[str, list[str], float, int | None, list[str]]]
    rows = [(t, ["Comedy"], 2.0, 2010, []) for t in COMEDIES]
    rows += [(t, ["Drama"], 2.0, 2010, ["Ann Lee"] if t == "d1" else []) for t in DRAMAS]
    rows += [("new-drama", ["Drama"], 2.0, 2020, ["Ann Lee"]), ("new-show", ["Comedy"], 2.0, 2020, [])]
    rows += [("blank", [], np.nan, None, [])]
    return pd.DataFrame(
        {
            "title_id": [r[0] for r in rows],
            "genres": [r[1] for r in rows],
            "maturity_level": [r[2] for r in rows],
            "release_year": [r[3] for r in rows],
            "director": [r[4] for r in rows],
            "countries": [[] for _ in rows],
        }
    )


def episodes() -> pd.DataFrame:
    return pd.DataFrame([(e, "new-show") for e in NEW_SHOW], columns=["episode_id", "series_id"])


def interactions() -> Interactions:
    rows = [(f"fun{u}", t, i) for u in range(12) for i, t in enumerate(COMEDIES)]
    rows += [(f"sad{u}", t, i) for u in range(4) for i, t in enumerate(DRAMAS)]
    frame = pd.DataFrame(rows, columns=["profile_id", "title_id", "hour"])
    return Interactions(
        user_ids=frame["profile_id"].to_numpy(dtype=str),
        item_ids=frame["title_id"].to_numpy(dtype=str),
        timestamps=((T0.value // 10**9) + 3600 * frame["hour"]).to_numpy(dtype=np.int64),
        weights=np.ones(len(frame), dtype=np.float32),
    )


def fitted(name: str) -> CandidateGenerator:
    return model_class(name)().fit(interactions())  # type: ignore[call-arg,return-value]


def watched(*title_ids: str, completed: bool = True) -> ViewerContext:
    history = [
        WatchedTitle(title_id=t, ts=T0 + pd.Timedelta(days=30, hours=i), progress=1.0, completed=completed)
        for i, t in enumerate(title_ids)
    ]
    return ViewerContext(profile_id="p", history=history, maturity_level=3, kids=False, country="US")


@pytest.fixture(scope="module")
def catalog() -> TitleCatalog:
    return TitleCatalog.from_frame(titles(), episodes())


@pytest.fixture(scope="module", params=["item_knn", "seqknn"])
def pipeline(request: pytest.FixtureRequest, catalog: TitleCatalog) -> RecommendationPipeline:
    bundle = ModelBundle(candidates={"popularity": fitted("popularity"), request.param: fitted(request.param)})
    return RecommendationPipeline(bundle, catalog, version="1")


def ids(items: list[tuple[str, float]]) -> list[str]:
    return [t for t, _ in items]


def test_unknown_titles_get_known_content_neighbours(pipeline: RecommendationPipeline) -> None:
    content = pipeline.content
    assert content.unknown == 3  # new-drama, new-show, blank
    stand_ins = content.of("new-drama")
    assert len(stand_ins) == content_neighbours.STAND_INS and set(stand_ins) <= set(DRAMAS)
    assert stand_ins[0] == "d1", "the shared director makes d1 the nearest drama"
    assert set(content.of("new-show")) <= set(COMEDIES)
    assert content.of("new-show-e2") == content.of("new-show"), "an unplayed episode reads as its series"
    assert not content.of("d2") and not content.of("blank"), "known titles and titles with no metadata: none"


def test_a_history_of_one_unknown_title_moves_the_page(pipeline: RecommendationPipeline) -> None:
    before = pipeline.recommend(watched(), k=3)
    assert (before.source, before.reason) == ("fallback", "no_history")
    assert set(ids(before.items)) <= set(COMEDIES)
    after = pipeline.recommend(watched("new-drama"), k=3)
    assert after.source == "model", after.reason  # before this change: ("fallback", "unknown_history")
    got = ids(after.items)
    assert got != ids(before.items)
    assert set(got) <= set(DRAMAS), f"content neighbours share the watched title's genre: {got}"
    assert "new-drama" not in got
    history = pipeline._model_history(["c1", "new-drama"])
    assert history == ["c1", *pipeline.content.of("new-drama"), "new-drama"], "stand-ins just before, id kept"


def test_stand_ins_are_read_as_history_but_still_recommended(pipeline: RecommendationPipeline) -> None:
    """The viewer never watched the stand-ins: Top Picks may show them; a stand-in it did watch stays out."""
    stand_ins = pipeline.content.of("new-drama")
    got = ids(pipeline.recommend(watched("new-drama"), k=len(DRAMAS) - 1).items)
    assert set(stand_ins) & set(got), f"the nearest known titles to the watched one are candidates: {got}"
    also_watched = ids(pipeline.recommend(watched(stand_ins[0], "new-drama", completed=False), k=5).items)
    assert stand_ins[0] not in also_watched, "a stand-in the viewer watched is seen like any watched title"
    assert pipeline._read_history(["c1", "d2"])[1] == set(), "a history of known titles has no stand-ins"
    assert pipeline._read_history([stand_ins[0], "new-drama"])[1] == set(stand_ins[1:])


def test_a_known_history_answers_exactly_as_before(pipeline: RecommendationPipeline, catalog: TitleCatalog) -> None:
    """Without content tokens nothing can stand in: the answer every known-title history had before."""
    plain = RecommendationPipeline(pipeline.bundle, replace(catalog, tokens=[]), version="1")
    assert len(plain.content) == 0
    for history in (("c1", "c2"), ("d1",), ("c1", "d3", "c4")):
        context = watched(*history, completed=False)
        assert pipeline._model_history(list(history)) == list(history)
        assert pipeline.recommend(context, k=5).items == plain.recommend(context, k=5).items
        assert pipeline.rank(context, [*COMEDIES, *DRAMAS]).items == plain.rank(context, [*COMEDIES, *DRAMAS]).items
        assert pipeline.similar(context, history[-1], k=5).items == plain.similar(context, history[-1], k=5).items


def test_an_unknown_title_without_content_neighbours_changes_nothing(pipeline: RecommendationPipeline) -> None:
    assert pipeline._model_history(["blank"]) == ["blank"]
    result = pipeline.recommend(watched("blank"), k=3)
    assert (result.source, result.reason) == ("fallback", "unknown_history")
    with pytest.raises(NotFoundError):
        pipeline.similar(watched(), "blank", k=3)


def test_similar_to_an_unknown_title_answers_from_its_content_neighbours(pipeline: RecommendationPipeline) -> None:
    result = pipeline.similar(watched(), "new-drama", k=4)
    got = ids(result.items)
    assert result.source == "model"
    assert got[0] == "d1" and set(got) <= set(DRAMAS), got
    assert [s for _, s in result.items] == sorted((s for _, s in result.items), reverse=True)
    episode = pipeline.similar(watched(), "new-show", k=3)
    assert set(ids(episode.items)) <= set(COMEDIES)


def test_ties_in_content_go_to_the_more_popular_known_title(catalog: TitleCatalog) -> None:
    known = np.array([t in {*COMEDIES, *DRAMAS} for t in catalog.title_ids])
    popular = [(t, 0.0) for t in reversed(COMEDIES)]  # c6 most popular
    table = content_neighbours.build(
        catalog, known, content_neighbours.popularity_rank(catalog, popular), {*COMEDIES, *DRAMAS}, k=2
    )
    assert table.of("new-show") == ("c6", "c5")
    assert table.build_s >= 0 and table.unknown == 3
