"""The framework-free recommendation pipeline on a small world with a known right answer.

The pipeline knows titles only: every question carries its viewer (``world.context``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import test_serving_world as world

from core.errors import InvalidInputError, NotFoundError
from features.ranking_frame import candidate_frame, candidates_from_lists
from features.ranking_frame import ranking_matrix as frame_matrix
from models.base import CandidateGenerator, Recommendation
from models.bundle import ModelBundle
from serving.catalog import TitleCatalog
from serving.pipeline import RecommendationPipeline, Viewer
from serving.ranking import ranking_matrix

ctx = world.context


@pytest.fixture(scope="module")
def catalog() -> TitleCatalog:
    return TitleCatalog.from_frame(world.titles_frame())


@pytest.fixture(scope="module")
def pipeline(catalog: TitleCatalog) -> RecommendationPipeline:
    return RecommendationPipeline(world.build_bundle(), catalog, version="7")


def ids(items: list[tuple[str, float]]) -> list[str]:
    return [t for t, _ in items]


def test_viewer_reads_history_oldest_first_and_completed_from_the_context() -> None:
    viewer = Viewer.of(ctx("viewer"))
    assert viewer.history == ["a1", "a2", "a3"]
    assert viewer.completed == frozenset({"a3"})  # 95% watched; a1, a2 only half
    assert Viewer.of(ctx("frenchie")).country == "FR"
    # a kids profile is capped by core.rules whatever level it claims
    assert Viewer.of(ctx("viewer", kids=True)).max_level <= 1


def test_a_profile_unknown_to_training_is_personalised_from_its_context(pipeline: RecommendationPipeline) -> None:
    """Nothing about ``brand-new`` exists anywhere: its history in the request is enough."""
    fresh = ctx("brand-new", history=ctx("viewer").history)
    result = pipeline.recommend(fresh, k=2)
    assert result.source == "model", result.reason
    assert ids(result.items) == ["a4", "a5"]
    # and the same profile id with another history gets another answer: the context decides, not the id
    kid_taste = pipeline.recommend(ctx("viewer", history=ctx("kid0").history), k=2)
    assert set(ids(kid_taste.items)) <= set(world.FAMILY)


def test_known_profile_gets_personal_titles_from_its_cluster(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend(ctx("viewer"), k=2)
    assert result.source == "model"
    assert result.reason is None
    assert ids(result.items) == ["a4", "a5"]  # co-watched with a1..a3; fr1 is not licensed in the US
    assert [s for _, s in result.items] == sorted((s for _, s in result.items), reverse=True)


def test_history_and_completed_titles_are_never_recommended(pipeline: RecommendationPipeline) -> None:
    for k in (1, 5, 11):
        assert not {"a1", "a2", "a3"} & set(ids(pipeline.recommend(ctx("viewer"), k=k).items))


def test_exclude_list_is_honoured_and_popularity_fills_the_row(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend(ctx("viewer", exclude=["a4"]), k=4)
    got = ids(result.items)
    assert "a4" not in got
    assert got[0] == "a5"
    assert len(got) == 4  # a5, then popular titles the viewer may see
    assert all(t.startswith("k") or t == "a5" for t in got)


def test_maturity_filter_keeps_kids_on_family_titles(pipeline: RecommendationPipeline) -> None:
    for k in (1, 3, 20):
        got = ids(pipeline.recommend(ctx("little"), k=k).items)
        assert got and all(t in world.FAMILY for t in got), got
    # the request may lower the level of an adult profile, never see more than it asks
    assert all(t in world.FAMILY for t in ids(pipeline.recommend(ctx("viewer", maturity_level=0), k=10).items))


def test_licensing_filter_by_country(pipeline: RecommendationPipeline) -> None:
    assert "fr1" not in ids(pipeline.recommend(ctx("viewer"), k=10).items)
    assert "fr1" in ids(pipeline.recommend(ctx("viewer", country="FR"), k=10).items)
    # an unknown country only sees titles licensed everywhere
    assert "fr1" not in ids(pipeline.recommend(ctx("viewer", country=None), k=20).items)


def test_a_viewer_without_history_gets_filtered_popularity(pipeline: RecommendationPipeline) -> None:
    result = pipeline.recommend(ctx("nobody"), k=3)
    assert result.source == "fallback"
    assert result.reason == "no_history"
    assert ids(result.items)[0] == "a1"  # the most watched title
    kids = pipeline.recommend(ctx("nobody", maturity_level=0), k=3)
    assert kids.source == "fallback" and ids(kids.items)[0] == "k1"
    also_kids = pipeline.recommend(ctx("nobody", kids=True), k=3)
    assert all(t in world.FAMILY for t in ids(also_kids.items))


def test_a_history_no_model_knows_is_a_fallback_with_its_reason(pipeline: RecommendationPipeline) -> None:
    from datetime import UTC, datetime

    strange = ctx("nobody", history=[{"title_id": "never-seen", "ts": datetime.now(UTC)}])
    result = pipeline.recommend(strange, k=3)
    assert (result.source, result.reason) == ("fallback", "unknown_history")


def test_k_out_of_range_is_a_clear_error(pipeline: RecommendationPipeline) -> None:
    with pytest.raises(InvalidInputError, match="k must be between 1 and 100, got 0"):
        pipeline.recommend(ctx("viewer"), k=0)


def test_similar_and_unknown_title(pipeline: RecommendationPipeline) -> None:
    got = ids(pipeline.similar(ctx("viewer"), "a2", k=3).items)
    assert "a2" not in got and set(got) <= set(world.ADULT)  # fr1 is not licensed in the US
    assert "a3" not in got  # completed by this viewer
    assert "fr1" in ids(pipeline.similar(ctx("frenchie", history=[]), "a2", k=10).items)
    # a kids viewer never sees an adult title, even next to an adult seed
    kid = ids(pipeline.similar(ctx("little"), "a2", k=10).items)
    assert all(t in world.FAMILY for t in kid)
    with pytest.raises(NotFoundError, match="unknown title_id 'zzz'"):
        pipeline.similar(ctx("viewer"), "zzz")


def test_rank_orders_given_titles_and_drops_what_the_viewer_may_not_see(pipeline: RecommendationPipeline) -> None:
    result = pipeline.rank(ctx("viewer"), ["k2", "a4", "fr1"])
    assert result.source == "model"
    assert ids(result.items) == ["a4", "k2"]  # fr1 is not licensed in the US; a4 is the viewer's taste
    kid = pipeline.rank(ctx("little"), ["a4", "k2", "k3"])
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


def test_model_error_falls_back_to_popularity(catalog: TitleCatalog) -> None:
    bundle = ModelBundle(candidates={"popularity": world.fitted("popularity"), "broken": _Broken()})
    result = RecommendationPipeline(bundle, catalog, version="1").recommend(ctx("viewer"), k=3)
    assert result.source == "fallback"
    assert result.reason == "model_error"
    assert not {"a1", "a2", "a3"} & set(ids(result.items))


def test_popularity_only_bundle_is_fallback(catalog: TitleCatalog) -> None:
    result = RecommendationPipeline(world.build_bundle(None), catalog, version="1").recommend(ctx("viewer"), k=3)
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


def test_ranker_reorders_candidates(catalog: TitleCatalog) -> None:
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
    ranked = RecommendationPipeline(bundle, catalog, version="3").recommend(ctx("viewer"), k=3)
    plain = RecommendationPipeline(world.build_bundle(), catalog, version="2").recommend(ctx("viewer"), k=3)
    assert ids(plain.items)[0] == "a4"  # item-kNN alone: the viewer's cluster
    assert ids(ranked.items)[0] == "k1"  # most popular title the viewer has not watched
    assert ranked.source == "model"
    assert not {"a1", "a2", "a3", "fr1"} & set(ids(ranked.items))
    # the batchable /score API path: right shape scores, wrong shape is a clear error
    assert RecommendationPipeline(bundle, catalog, version="3").score_rows(x[:5]).shape == (5,)
    with pytest.raises(InvalidInputError, match="features must have shape"):
        RecommendationPipeline(bundle, catalog, version="3").score_rows(x[:5, :1])


def _count_cold_computations(pipeline: RecommendationPipeline, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The calls that reach the whole pipeline (memo misses), one entry per call."""
    computed: list[object] = []
    original = pipeline._ranked_candidates

    def counting(*args: object) -> list[tuple[str, float]]:
        computed.append(args)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "_ranked_candidates", counting)
    return computed


def test_a_repeated_question_reuses_its_candidates_and_filters_them_afresh(
    catalog: TitleCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = RecommendationPipeline(world.build_bundle(), catalog, version="7")
    computed = _count_cold_computations(pipeline, monkeypatch)
    first = pipeline.recommend(ctx("viewer"), k=10)
    assert pipeline.recommend(ctx("viewer"), k=10) == first and len(computed) == 1
    # Filters run on every request, remembered candidates or not.
    # The key is the whole context: another country, level, exclude list or watch is another question.
    assert "fr1" in ids(pipeline.recommend(ctx("viewer", country="FR"), k=10).items)
    assert len(computed) == 2
    assert all(t in world.FAMILY for t in ids(pipeline.recommend(ctx("viewer", maturity_level=0), k=10).items))
    assert len(computed) == 3
    dropped = first.items[0][0]
    assert dropped not in ids(pipeline.recommend(ctx("viewer", exclude=[dropped]), k=10).items)
    assert len(computed) == 4
    longer = ctx("viewer", history=[*ctx("viewer").history, *ctx("adult0").history[-1:]])
    pipeline.recommend(longer, k=10)
    assert len(computed) == 5
    # the profile id is not part of the question: the same context under another id is answered from memory
    assert pipeline.recommend(ctx("viewer").model_copy(update={"profile_id": "someone-else"}), k=10) == first
    assert len(computed) == 5


def test_a_kids_level_gets_personal_titles_even_when_every_top_candidate_is_for_adults(
    catalog: TitleCatalog,
) -> None:
    """Generators propose from the whole catalog; a kids profile must not lose its candidates to the filter."""
    # Two candidates per generator: for this adult history they are adult titles, so filtering after
    # ranking would leave nothing and serve popularity.
    pipeline = RecommendationPipeline(world.build_bundle(), catalog, version="7", n_candidates=2)
    assert pipeline.n_candidates == 2
    adult = pipeline.recommend(ctx("viewer"), k=1)
    assert adult.source == "model" and not set(ids(adult.items)) & set(world.FAMILY)
    kids = pipeline.recommend(ctx("viewer", maturity_level=0), k=1)
    assert kids.source == "model", kids.reason
    assert ids(kids.items) and all(t in world.FAMILY for t in ids(kids.items))


def test_warm_up_answers_a_few_made_up_viewers_and_survives_a_broken_model(catalog: TitleCatalog) -> None:
    pipeline = RecommendationPipeline(world.build_bundle(), catalog, version="7")
    assert pipeline.warm_up(viewers=2) == 2
    assert len(pipeline._memo) == 2, "the warm-up's answers are what the first requests reuse"
    broken = ModelBundle(candidates={"popularity": world.fitted("popularity"), "broken": _Broken()})
    assert RecommendationPipeline(broken, catalog, version="1").warm_up() > 0


@pytest.mark.parametrize("name", ["item_knn", "als", "popularity"])
def test_the_fast_candidate_path_proposes_what_recommend_would(name: str) -> None:
    """``serving.candidates`` shares per-request work; its lists must equal the model's own ``recommend``."""
    from serving.candidates import CandidateSources

    model = world.fitted(name)
    history = ["a1", "a2", "unknown-title"]
    got = CandidateSources({name: model}).propose(history, 4, exclude=["a4"])[name]
    want = model.recommend("", 4, history=history, exclude=["a4"])
    assert isinstance(got, Recommendation)
    assert got.item_ids.tolist() == want.item_ids.tolist()
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)


def test_catalog_genre_match_equals_the_feature_pipelines_definition() -> None:
    import pandas as pd

    from features.pipelines.match import genre_match_scores

    titles = pd.DataFrame(
        {
            "title_id": ["x", "y", "z"],
            "maturity_level": [0, 0, 0],
            "countries": [[], [], []],
            "genres": [["Drama", "Comedy"], ["Horror"], []],
        }
    )
    catalog = TitleCatalog.from_frame(titles)
    names, shares = ["Drama", "Horror", "Comedy"], [0.5, 0.3, 0.2]
    ids_ = ["x", "y", "z", "nope"]
    expected = genre_match_scores([names] * 4, [shares] * 4, [catalog.genres_of(t) for t in ids_])
    np.testing.assert_allclose(catalog.genre_match(names, shares, ids_), expected)


def test_profile_features_come_from_the_context_alone() -> None:
    """The ranker's profile columns, computed at request time with the offline tables' names and meanings."""
    from serving.context_features import profile_features

    day = 86_400.0
    now = 100 * day
    genres = {"x": ["Drama"], "y": ["Drama", "Comedy"], "z": ["Horror"]}
    values = profile_features(
        ["x", "y", "z"],
        np.array([now - 20 * day, now - 3 * day, now - 0.5 * day]),
        np.array([1.0, 0.5, 0.95]),
        np.array([True, False, True]),
        now_s=now,
        genres_of=genres.get,
        duration_of=lambda t: 3600.0,
        canonical=lambda t: t,
    )
    assert (values["plays_1d"], values["plays_7d"], values["plays_30d"], values["plays_total"]) == (1, 2, 3, 3)
    assert (values["completed_1d"], values["completed_7d"], values["completed_30d"]) == (1, 1, 2)
    assert values["watch_minutes_7d"] == pytest.approx(0.5 * 60 + 0.95 * 60)
    assert values["completion_rate"] == pytest.approx(2 / 3)
    assert values["days_since_last_watch"] == pytest.approx(0.5)
    assert values["distinct_genres"] == 3
    assert values["affinity_genres"][0] == "Horror"  # the most recent, most watched genre leads
    assert sum(values["affinity_shares"]) == pytest.approx(1.0)
    empty = profile_features([], np.zeros(0), np.zeros(0), np.zeros(0, bool), now_s=now, genres_of=genres.get,
                             duration_of=lambda t: 0.0, canonical=lambda t: t)  # fmt: skip
    assert empty["plays_total"] == 0 and empty["affinity_genres"] is None


def test_memo_off_makes_every_request_cold(catalog: TitleCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = RecommendationPipeline(world.build_bundle(), catalog, version="7", memo_s=0)
    computed = _count_cold_computations(pipeline, monkeypatch)
    assert pipeline.recommend(ctx("viewer"), k=3) == pipeline.recommend(ctx("viewer"), k=3)
    assert len(computed) == 2 and not pipeline._memo


def test_memo_entries_leave_when_their_lifetime_ends(catalog: TitleCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stale answers are dropped on time, not kept until the bound is reached (memory under a long soak)."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    pipeline = RecommendationPipeline(world.build_bundle(), catalog, version="7", memo_s=30)
    computed = _count_cold_computations(pipeline, monkeypatch)
    first = pipeline.recommend(ctx("viewer"), k=3)
    clock[0] += 10
    assert pipeline.recommend(ctx("viewer"), k=3) == first and len(computed) == 1  # within its lifetime: reused
    clock[0] += 25
    pipeline.recommend(ctx("viewer", history=ctx("kid0").history), k=3)  # another context; a write sweeps
    assert len(computed) == 2 and len(pipeline._memo) == 1, "the first viewer's answer outlived its 30 s"
