"""Serving's one-viewer fast paths give the answers of the general paths they replace.

Each request scores one viewer, so serving takes shortcuts the batch code does
not: sparse rows summed without scipy operands, seqknn's viewer-independent time
scores reused, the loaded ranker run in numpy, visibility as flags per title. A
shortcut may only change the cost: these tests compare each one with the path it
replaces, bitwise where the arithmetic is the same and to float32 precision where
the library differs (torch vs numpy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import test_serving_world as world

from core.rules import may_see
from models.base import Interactions
from models.item_knn import ItemKNN
from models.ranker import NeuralRanker
from models.scoring import UserContext, sparse_user_matrix, user_weights, weighted_rows
from models.sequence import SequenceKNN
from serving.catalog import TitleCatalog


def _random_csr(rng: np.random.Generator, n: int = 300, density: float = 0.05) -> sp.csr_matrix:
    matrix = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    matrix.sort_indices()
    return matrix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_rows_equal_the_sparse_product_bitwise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = _random_csr(rng)
    ctx = UserContext(-1, rng.integers(0, 300, size=40).astype(np.int64), 0, True)  # repeats included
    for half_life in (None, 3.0):
        want = np.asarray((sparse_user_matrix([ctx], 300, half_life) @ matrix).todense(), np.float32)[0]
        got = weighted_rows(matrix, *user_weights(ctx, half_life))
        np.testing.assert_array_equal(got, want)


def test_weighted_rows_sum_repeated_and_unsorted_rows_like_a_coo_row() -> None:
    rng = np.random.default_rng(3)
    matrix = _random_csr(rng)
    rows = np.array([7, 3, 7, 250, 3], np.int64)
    weights = np.array([0.5, 1.0, 0.25, 2.0, 0.125], np.float32)
    vote = sp.csr_matrix((weights, (np.zeros(5, np.int64), rows)), shape=(1, 300), dtype=np.float32)
    want = np.asarray((vote @ matrix).todense(), np.float32)[0]
    np.testing.assert_array_equal(weighted_rows(matrix, rows, weights), want)
    assert not weighted_rows(matrix, np.zeros(0, np.int64), np.zeros(0, np.float32)).any()


def _interactions(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(0, 120, n)
    items = (users % 7) * 10 + rng.integers(0, 25, n)  # clusters, so neighbours mean something
    return Interactions(
        user_ids=np.array([f"u{u}" for u in users]),
        item_ids=np.array([f"i{i}" for i in items]),
        timestamps=(1_700_000_000 + rng.integers(0, 90 * 86_400, n)).astype(np.int64),
        weights=np.ones(n, np.float32),
    )


@pytest.mark.parametrize("model", [ItemKNN(neighbours=30), SequenceKNN(neighbours=30)], ids=["item_knn", "seqknn"])
def test_one_viewer_scores_equal_the_batch_scores_bitwise(model: ItemKNN | SequenceKNN) -> None:
    model.fit(_interactions())
    rng = np.random.default_rng(5)
    now = int(model.history.ts.max())
    for _ in range(20):
        ctx = UserContext(-1, rng.integers(0, model.history.n_items, size=12).astype(np.int64), now, True)
        other = UserContext(-1, rng.integers(0, model.history.n_items, size=3).astype(np.int64), now, True)
        one = model._score([ctx])[0]
        batch = model._score([ctx, other])[0]  # two viewers: the general sparse path
        np.testing.assert_array_equal(one, batch)


def test_seqknn_forgets_its_time_scores_when_refitted() -> None:
    model = SequenceKNN(neighbours=30, time_weight=1.0).fit(_interactions(0))
    ctx = UserContext(-1, np.array([1, 2, 3], np.int64), int(model.history.ts.max()), True)
    model._score([ctx])
    assert model._time_rows
    model.fit(_interactions(1))
    assert not model._time_rows
    ctx = UserContext(-1, np.array([1, 2, 3], np.int64), int(model.history.ts.max()), True)
    np.testing.assert_array_equal(model._score([ctx])[0], model._score([ctx, ctx])[0])


def test_a_loaded_ranker_scores_in_numpy_as_torch_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32) * 3 + 10
    groups = np.repeat(np.arange(40), 10).astype(np.int64)
    labels = (rng.random(400) < 0.1).astype(np.float32)
    fitted = NeuralRanker(hidden=(16, 8), epochs=2, dropout=0.1, seed=1).fit(x, groups, labels, list("abcde"))
    fitted.save(tmp_path / "r")
    loaded = NeuralRanker.load(tmp_path / "r")
    assert loaded._dense_layers() is not None  # the fast path is taken
    rows = rng.normal(size=(300, 5)).astype(np.float32) * 3 + 10
    rows[0, 1] = np.nan  # standardised NaN → 0 on both paths
    fast = loaded.score(rows)
    frozen, loaded._frozen = loaded._frozen, None
    reference = loaded.score(rows)  # torch
    loaded._frozen = frozen
    assert fast.dtype == np.float32 and fast.shape == (300,)
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.argsort(-fast, kind="stable")[:50], np.argsort(-reference, kind="stable")[:50])
    assert fitted._dense_layers() is None  # a ranker being fitted stays on torch


def test_visible_flags_are_the_one_rule_per_title() -> None:
    catalog = TitleCatalog.from_frame(
        world.titles_frame(),
        pd.DataFrame({"episode_id": ["s1-e1", "orphan-e1"], "series_id": ["a1", "nowhere"], "duration_s": [60, 60]}),
    )
    unknown = len(catalog)
    index = catalog.played_index()
    assert index["s1-e1"] == index["a1"] and "orphan-e1" not in index
    for level in range(4):
        for country in (None, "US", "DE", "FR"):
            flags = catalog.visible_flags(level, country)
            assert len(flags) == unknown + 1 and flags[unknown] is False
            for i, title_id in enumerate(catalog.title_ids):
                rule = may_see(int(catalog.maturity[i]), catalog.countries[i], level, country)
                assert flags[i] == rule == catalog.allowed(title_id, level, country)


def test_serving_options_read_the_environment_once_with_clear_errors() -> None:
    from serving.options import ServingOptions

    assert ServingOptions.from_environ({}) == ServingOptions()
    options = ServingOptions.from_environ(
        {"MARQUEE_SERVING_WORKERS": "3", "MARQUEE_SERVING_MEMO_S": "0", "MARQUEE_SERVING_ONLINE_FEATURES": "no"}
    )
    assert (options.workers, options.memo_s, options.online_features) == (3, 0.0, False)
    with pytest.raises(ValueError, match="MARQUEE_SERVING_TIMEOUT_S='soon' is not a float"):
        ServingOptions.from_environ({"MARQUEE_SERVING_TIMEOUT_S": "soon"})


def _reference_top(row: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-n that ``ItemScorer._top`` computed before it stopped sorting the ties at its cut."""
    candidates = np.flatnonzero(np.isfinite(row))
    k = min(n, len(candidates))
    if k < len(candidates):
        part = np.argpartition(-row[candidates], k - 1)[:k]
        threshold = row[candidates[part]].min()
        candidates = candidates[row[candidates] >= threshold]
    chosen = candidates[np.lexsort((candidates, -row[candidates]))[:k]]
    return chosen, row[chosen].astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_top_indices_equal_a_full_sort_by_score_then_index(seed: int) -> None:
    rng = np.random.default_rng(seed)
    row = rng.integers(0, 6, size=2000).astype(np.float64)  # few distinct values: ties everywhere, at the cut too
    row[rng.random(2000) < 0.7] = 0.0  # mostly zeros, as a similarity row is
    row[rng.integers(0, 2000, 50)] = -np.inf
    for n in (1, 5, 60, 300, 1500, 1950, 5000):
        got = ItemKNN._top_indices(row.copy(), n)
        want = _reference_top(row.copy(), n)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def _series_world(seed: int) -> tuple[ItemKNN, TitleCatalog]:
    """Played ids are movies and episodes of series; titles have maturity levels and licences."""
    rng = np.random.default_rng(seed)
    movies = [f"m{i}" for i in range(60)]
    series = {f"s{i}": [f"s{i}-e{j}" for j in range(int(rng.integers(1, 6)))] for i in range(15)}
    played = np.array(movies + [e for eps in series.values() for e in eps])
    n = 4000
    users = rng.integers(0, 150, n)
    items = (
        played[(users % 9) * 12 + rng.integers(0, 30, n)]
        if len(played) > 130
        else played[rng.integers(0, len(played), n)]
    )
    knn = ItemKNN(neighbours=15)
    knn.fit(
        Interactions(
            user_ids=np.array([f"u{u}" for u in users]),
            item_ids=items,
            timestamps=(1_700_000_000 + rng.integers(0, 90 * 86_400, n)).astype(np.int64),
            weights=np.ones(n, np.float32),
        )
    )
    title_ids = movies + list(series) + ["unplayed"]
    titles = pd.DataFrame(
        {
            "title_id": title_ids,
            "maturity_level": rng.integers(0, 4, len(title_ids)),
            "countries": [
                [] if rng.random() < 0.6 else ["US"] if rng.random() < 0.5 else ["DE", "FR"] for _ in title_ids
            ],
            "genres": [["Drama"] for _ in title_ids],
        }
    )
    episodes = pd.DataFrame([(e, s) for s, eps in series.items() for e in eps], columns=["episode_id", "series_id"])
    return knn, TitleCatalog.from_frame(titles, episodes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_similar_in_numpy_answers_what_the_pairs_answered(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexed neighbour lists (merged over a series' episodes, filtered in numpy) equal the pair path's answers."""
    import serving.pipeline as pipeline_module
    from models.bundle import ModelBundle
    from serving.contract import ViewerContext, WatchedTitle
    from serving.pipeline import IndexedNeighbours, RecommendationPipeline, Scored

    knn, catalog = _series_world(seed)
    rng = np.random.default_rng(seed + 10)
    played = knn.history.items.ids.tolist()
    cases = []
    for v in range(30):
        watched = rng.choice(played, size=int(rng.integers(0, 25)), replace=False).tolist()
        context = ViewerContext(
            profile_id=f"v{v}",
            history=[
                WatchedTitle(title_id=t, ts=pd.Timestamp("2024-01-01", tz="UTC"), progress=0.95, completed=bool(i % 2))
                for i, t in enumerate(watched)
            ],
            maturity_level=int(rng.integers(0, 4)),
            kids=bool(rng.random() < 0.3),
            country=[None, "US", "DE"][v % 3],
            exclude=rng.choice(catalog.title_ids + played, size=int(rng.integers(0, 8))).tolist(),
        )
        cases += [(context, t, k) for t in rng.choice(catalog.title_ids, size=8).tolist() for k in (1, 7, 40)]

    def answers(pipeline: RecommendationPipeline) -> list[object]:
        out: list[object] = []
        for context, title_id, k in cases:
            try:
                out.append(pipeline.similar(context, title_id, k))
            except LookupError as exc:
                out.append(type(exc))
        return out

    fast = RecommendationPipeline(ModelBundle(candidates={"item_knn": knn}), catalog, version="1")
    got = answers(fast)
    with monkeypatch.context() as patch:
        patch.setattr(pipeline_module, "_indexed_similar", lambda generator: False)
        slow = RecommendationPipeline(ModelBundle(candidates={"item_knn": knn}), catalog, version="1")
        want = answers(slow)
    assert sum(isinstance(a, Scored) and len(a.items) > 1 for a in want) > 300
    for case, a, b in zip(cases, got, want, strict=True):
        assert a == b, case
    assert any(isinstance(v, IndexedNeighbours) for v in fast._neighbour_cache.values())
    assert not any(isinstance(v, IndexedNeighbours) for v in slow._neighbour_cache.values())


def test_item_knn_similar_row_is_the_sparse_row() -> None:
    model = ItemKNN(neighbours=30)
    model.fit(_interactions())
    for i in range(model.history.n_items):
        want = np.asarray(model._sim[i].todense(), np.float32).ravel()
        np.testing.assert_array_equal(model._similar(i), want)


def _partition_top(row: np.ndarray, n: int) -> np.ndarray:
    """``serving.candidates._top``'s indices as they were before the bound: one partition of the whole row."""
    k = min(n, len(row))
    part = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
    part = part[np.isfinite(row[part])]
    return part[np.lexsort((part, -row[part]))]


@pytest.mark.parametrize("seed", range(8))
def test_candidate_top_n_equals_one_partition_of_the_whole_row(seed: int) -> None:
    """The bounded top-n takes the same entries as a partition of the row, ties at the cut included.

    Rows as generators give them: continuous scores, rows with many ties and zeros,
    the viewer's titles at -inf, a kids mask leaving a few finite entries, stray
    NaN and +inf; long rows (the bound) and short ones (no bound).
    """
    from models.ids import IdMapping
    from serving.candidates import _head_candidates, _top, _unique_head

    rng = np.random.default_rng(seed)
    bounded = 0
    for size in (50, 3000, 24000):
        mapping = IdMapping([f"i{i}" for i in range(size)])
        rows = [
            rng.standard_normal(size),
            np.round(rng.random(size) * 20) / 20,  # few distinct values: ties at the cut
            np.where(rng.random(size) < 0.9, 0.0, rng.random(size)),  # mostly zeros
        ]
        for base in rows:
            for variant in range(4):
                row = base.copy()
                row[rng.integers(0, size, size // 20)] = -np.inf
                if variant == 1:
                    row[rng.random(size) < 0.97] = -np.inf  # a restricted viewer's mask
                if variant == 2:
                    row[rng.integers(0, size, 3)] = np.nan
                if variant == 3:
                    row[rng.integers(0, size, 2)] = np.inf
                for n in (1, 10, 100, 400):
                    want = _partition_top(row.copy(), n)
                    got = _top(row.copy(), n, mapping)
                    assert got.item_ids.tolist() == mapping.to_ids(want).tolist(), (size, variant, n)
                    np.testing.assert_array_equal(got.scores, row[want].astype(np.float32))
                    if n < size and _unique_head(row, min(n, size)) is not None:
                        bounded += 1
                    finite = row[np.isfinite(row)]
                    if len(finite) >= n:
                        cut = np.sort(finite)[::-1][n - 1]
                        head = _head_candidates(row, n)
                        assert set(np.flatnonzero(np.isfinite(row) & (row >= cut))) <= set(head.tolist())
                        assert np.isfinite(row[head]).all()
    assert bounded > 20, "the bound must be what answers most rows, not the fallback"


def test_a_restricted_viewers_masks_are_the_rule_per_id() -> None:
    """The pipeline's vectorised kids/licence masks equal asking the rule for every played id."""
    from models.bundle import ModelBundle
    from models.ids import IdMapping
    from serving.candidates import VisibleOnly, _Ids
    from serving.pipeline import RecommendationPipeline

    knn, catalog = _series_world(4)
    served = RecommendationPipeline(ModelBundle(candidates={"item_knn": knn}), catalog, version="1")
    index, unknown = catalog.played_index(), len(catalog)
    ids = knn.history.items
    for level in range(4):
        for country in (None, "US", "DE", "JP"):
            flags = catalog.visible_flags(level, country)
            visible = served._visible_array(level, country)

            def allows(played: str, flags: list[bool] = flags) -> bool:
                return flags[index.get(played, unknown)]

            def mask_of(mapping: IdMapping, visible: np.ndarray = visible) -> np.ndarray:
                return visible[served._title_index(mapping)]

            fast, slow = VisibleOnly((level, country), allows, mask_of), VisibleOnly((level, country), allows)
            np.testing.assert_array_equal(_Ids(ids).mask(fast), _Ids(ids).mask(slow))
            rule = [
                may_see(int(m), c, level, country) for m, c in zip(catalog.maturity, catalog.countries, strict=True)
            ]
            assert flags == [*rule, False]
