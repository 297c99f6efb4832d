"""The framework-free recommendation pipeline on a small world with a known right answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import test_serving_world as world

from core.errors import InvalidInputError, NotFoundError
from features.ranking_frame import candidate_frame, candidates_from_lists
from features.ranking_frame import ranking_matrix as frame_matrix
from models.base import CandidateGenerator, Recommendation
from models.bundle import ModelBundle
from serving.catalog import TitleCatalog, ViewerData
from serving.pipeline import RecommendationPipeline
from serving.ranking import ranking_matrix


@pytest.fixture(scope="module")
def data() -> tuple[TitleCatalog, ViewerData]:
    catalog = TitleCatalog.from_frame(world.titles_frame())
    viewers = ViewerData.from_frames(world.profiles_frame(), pd.DataFrame(), world.events_frame())
    return catalog, viewers


@pytest.fixture(scope="module")
def pipeline(data: tuple[TitleCatalog, ViewerData]) -> RecommendationPipeline:
    return RecommendationPipeline(world.build_bundle(), *data, version="7")


def ids(items: list[tuple[str, float]]) -> list[str]:
    return [t for t, _ in items]


def test_catalog_reads_history_oldest_first_and_completed(data: tuple[TitleCatalog, ViewerData]) -> None:
    _, viewers = data
    assert viewers.history["viewer"] == ["a1", "a2", "a3"]
    assert viewers.completed["viewer"] == frozenset({"a3"})  # 95% watched; a1, a2 only half
    assert viewers.profiles["frenchie"].country == "FR"


def test_known_profile_gets_personal_titles_from_its_cluster(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend("viewer", k=2)
    assert result.source == "model"
    assert result.reason is None
    assert ids(result.items) == ["a4", "a5"]  # co-watched with a1..a3; fr1 is not licensed in the US
    assert [s for _, s in result.items] == sorted((s for _, s in result.items), reverse=True)


def test_history_and_completed_titles_are_never_recommended(pipeline: RecommendationPipeline) -> None:
    for k in (1, 5, 11):
        assert not {"a1", "a2", "a3"} & set(ids(pipeline.recommend("viewer", k=k).items))


def test_exclude_list_is_honoured_and_popularity_fills_the_row(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend("viewer", k=4, exclude=["a4"])
    got = ids(result.items)
    assert "a4" not in got
    assert got[0] == "a5"
    assert len(got) == 4  # a5, then popular titles the viewer may see
    assert all(t.startswith("k") or t == "a5" for t in got)


def test_maturity_filter_keeps_kids_on_family_titles(pipeline: RecommendationPipeline) -> None:
    for k in (1, 3, 20):
        got = ids(pipeline.recommend("little", k=k).items)
        assert got and all(t in world.FAMILY for t in got), got
    # the request may lower the level of an adult profile, never see more than it asks
    assert all(t in world.FAMILY for t in ids(pipeline.recommend("viewer", k=10, maturity_level=0).items))


def test_licensing_filter_by_country(pipeline: RecommendationPipeline) -> None:
    assert "fr1" not in ids(pipeline.recommend("viewer", k=10).items)
    assert "fr1" in ids(pipeline.recommend("viewer", k=10, country="FR").items)
    # an unknown country only sees titles licensed everywhere
    assert "fr1" not in ids(pipeline.recommend("nobody", k=20).items)


def test_unknown_profile_gets_filtered_popularity(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend("nobody", k=3)
    assert result.source == "fallback"
    assert result.reason == "unknown_profile"
    assert ids(result.items)[0] == "a1"  # the most watched title
    kids = pipeline.recommend("nobody", k=3, maturity_level=0)
    assert kids.source == "fallback" and ids(kids.items)[0] == "k1"


def test_k_out_of_range_is_a_clear_error(pipeline: RecommendationPipeline) -> None:
    with pytest.raises(InvalidInputError, match="k must be between 1 and 100, got 0"):
        pipeline.recommend("viewer", k=0)


def test_similar_and_unknown_title(pipeline: RecommendationPipeline) -> None:
    got = ids(pipeline.similar("a2", k=3).items)
    assert "a2" not in got and set(got) <= set(world.ADULT) | {"fr1"}
    with pytest.raises(NotFoundError, match="unknown title_id 'zzz'"):
        pipeline.similar("zzz")


def test_rank_orders_given_titles_and_drops_what_the_viewer_may_not_see(pipeline: RecommendationPipeline) -> None:
    result = pipeline.rank("viewer", ["k2", "a4", "fr1"])
    assert result.source == "model"
    assert ids(result.items) == ["a4", "k2"]  # fr1 is not licensed in the US; a4 is the viewer's taste
    kid = pipeline.rank("little", ["a4", "k2", "k3"])
    assert set(ids(kid.items)) == {"k2", "k3"}


class _Broken(CandidateGenerator):
    """A model that fails at request time (a fault injected on purpose)."""

    name = "broken"

    def fit(self, interactions: object, **context: object) -> _Broken:
        return self

    def recommend(self, user_id: str, n: int = 10, **kwargs: object) -> Recommendation:  # type: ignore[override]
        raise RuntimeError("boom")

    def similar_items(self, item_id: str, n: int = 10) -> Recommendation:
        raise RuntimeError("boom")

    def save(self, path: object) -> None:  # pragma: no cover - never saved
        raise NotImplementedError

    @classmethod
    def load(cls, path: object) -> _Broken:  # pragma: no cover - never loaded
        raise NotImplementedError


def test_model_error_falls_back_to_popularity(data: tuple[TitleCatalog, ViewerData]) -> None:
    bundle = ModelBundle(candidates={"popularity": world.fitted("popularity"), "broken": _Broken()})
    result = RecommendationPipeline(bundle, *data, version="1").recommend("viewer", k=3)
    assert result.source == "fallback"
    assert result.reason == "model_error"
    assert not {"a1", "a2", "a3"} & set(ids(result.items))


def test_popularity_only_bundle_is_fallback(data: tuple[TitleCatalog, ViewerData]) -> None:
    result = RecommendationPipeline(world.build_bundle(None), *data, version="1").recommend("viewer", k=3)
    assert (result.source, result.reason) == ("fallback", "no_personal_model")


def test_ranking_matrix_equals_the_shared_ranking_frame() -> None:
    """The fast per-request matrix must equal ``features.ranking_frame`` on the same lists."""
    rng = np.random.default_rng(0)
    lists = {
        "als": (["t1", "t2", "t3"], rng.normal(size=3).tolist()),
        "popularity": (["t3", "t4"], [9.0, 4.0]),
    }
    columns = ["cand_als_score", "cand_als_rrank", "cand_als_hit", "cand_popularity_score", "cand_popularity_rrank"]
    columns += ["cand_popularity_hit", "cand_lightfm_score", "cand_lightfm_hit"]
    frame = candidate_frame(candidates_from_lists(lists), ["als", "popularity", "lightfm"])
    title_ids = frame["title_id"].tolist()
    expected = frame_matrix(frame, columns)
    got = ranking_matrix(columns, title_ids, lists, {}, {})
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_ranker_reorders_candidates(data: tuple[TitleCatalog, ViewerData]) -> None:
    """A real neural ranker taught "the more popular candidate wins" must overrule item-kNN's order."""
    from models.ranker import NeuralRanker

    columns = ["cand_popularity_rrank", "cand_item_knn_rrank"]
    rng = np.random.default_rng(0)
    n_groups, per_group = 300, 8
    x = rng.random((n_groups * per_group, 2), dtype=np.float32)
    groups = np.repeat(np.arange(n_groups), per_group)
    labels = np.zeros(len(x), dtype=np.float32)
    for g in range(n_groups):
        rows = np.flatnonzero(groups == g)
        labels[rows[np.argmax(x[rows, 0])]] = 1.0
    ranker = NeuralRanker(hidden=(16,), epochs=15, seed=0).fit(x, groups, labels, columns)
    bundle = world.build_bundle(metadata={"ranker_columns": columns, "ranker_used": True})
    bundle.ranker = ranker
    ranked = RecommendationPipeline(bundle, *data, version="3").recommend("viewer", k=3)
    plain = RecommendationPipeline(world.build_bundle(), *data, version="2").recommend("viewer", k=3)
    assert ids(plain.items)[0] == "a4"  # item-kNN alone: the viewer's cluster
    assert ids(ranked.items)[0] == "k1"  # most popular title the viewer has not watched
    assert ranked.source == "model"
    assert not {"a1", "a2", "a3", "fr1"} & set(ids(ranked.items))
    # the batchable /score API path: right shape scores, wrong shape is a clear error
    assert RecommendationPipeline(bundle, *data, version="3").score_rows(x[:5]).shape == (5,)
    with pytest.raises(InvalidInputError, match="features must have shape"):
        RecommendationPipeline(bundle, *data, version="3").score_rows(x[:5, :1])


def test_a_repeated_question_reuses_its_candidates_and_filters_them_afresh(
    data: tuple[TitleCatalog, ViewerData], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = RecommendationPipeline(world.build_bundle(), *data, version="7")
    computed: list[object] = []
    original = pipeline._ranked_candidates

    def counting(*args: object) -> list[tuple[str, float]]:
        computed.append(args)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "_ranked_candidates", counting)
    first = pipeline.recommend("viewer", k=10)
    assert pipeline.recommend("viewer", k=10) == first and len(computed) == 1
    # Filters run on every request, remembered candidates or not.
    assert "fr1" in ids(pipeline.recommend("viewer", k=10, country="FR").items)
    assert len(computed) == 1
    # Filters that hide most of the catalog (a kids level) make their own question: see the next test.
    assert all(t in world.FAMILY for t in ids(pipeline.recommend("viewer", k=10, maturity_level=0).items))
    assert len(computed) == 2
    # Another exclude list is another question.
    dropped = first.items[0][0]
    assert dropped not in ids(pipeline.recommend("viewer", k=10, exclude=[dropped]).items)
    assert len(computed) == 3


def test_a_kids_level_gets_personal_titles_even_when_every_top_candidate_is_for_adults(
    data: tuple[TitleCatalog, ViewerData],
) -> None:
    """Generators propose from the whole catalog; a kids profile must not lose its candidates to the filter."""
    # Two candidates per generator: for this adult history they are adult titles, so filtering after
    # ranking would leave nothing and serve popularity.
    pipeline = RecommendationPipeline(world.build_bundle(), *data, version="7", n_candidates=2)
    assert pipeline.n_candidates == 2
    adult = pipeline.recommend("viewer", k=1)
    assert adult.source == "model" and not set(ids(adult.items)) & set(world.FAMILY)
    kids = pipeline.recommend("viewer", k=1, maturity_level=0)
    assert kids.source == "model", kids.reason
    assert ids(kids.items) and all(t in world.FAMILY for t in ids(kids.items))


def test_warm_up_answers_a_few_profiles_and_survives_a_broken_model(data: tuple[TitleCatalog, ViewerData]) -> None:
    pipeline = RecommendationPipeline(world.build_bundle(), *data, version="7")
    assert pipeline.warm_up(profiles=2) == 2
    assert len(pipeline._memo) == 2, "the warm-up's answers are what the first requests reuse"
    broken = ModelBundle(candidates={"popularity": world.fitted("popularity"), "broken": _Broken()})
    assert RecommendationPipeline(broken, *data, version="1").warm_up() > 0
