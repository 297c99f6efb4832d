"""The neural ranker under ``marquee evaluate``: trained on validation only, scored on test like any model.

The ranker re-scores the union of the candidate generators' top ``CANDIDATE_K``. Under the
protocol it learns from the validation split alone: every candidate generator evaluated in the
run is fitted on the validation train part (with its tuned params), their lists for the
validation profiles are labelled by what each profile watched next (the validation test part),
and the ranker is fitted on those rows. On test, the same generators fitted on all of train
propose the lists, the ranker orders each profile's union, and the protocol's metrics are taken
on that order — the same table, the same champion rule. Nothing of the test split reaches the
ranker's training.

Coverage: like the blend's, the ranker's order is dampened by an exponent chosen by the blend's
rule (``models.blend.pick_dampening``), but by exposure rather than popularity: each title's score
is divided by a power of the number of profiles whose undampened top 10 already holds it
(``exposure_counts``). The ranker learns from the validation lists, so
its own scores there are in-sample; which exponents are allowed (ndcg@10 within the noise share
of the undampened order's) is judged on out-of-fold validation scores instead (``FOLDS`` rankers,
each fitted on the other folds' profiles and scoring its own). Whether an exponent reaches
recency-EASE's coverage is judged on the lists actually served: the final ranker's dampened order
of the refit generators' candidates against recency-EASE's refit lists, over the same profiles.
Coverage is a property of the lists alone (no held-out title enters it); a validation coverage
target, with popularity counts, fell short on test on six runs (docs/quality.md, 2026-12-06).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from models.base import CandidateGenerator
from training.protocol import Split
from training.ranker_data import RankerData, protocol_ranker_data

logger = logging.getLogger(__name__)

#: The ranker's registry name (``models.ranker.NeuralRanker``).
RANKER = "neural-ranker"
#: Titles each candidate generator proposes per profile; their union is what the ranker orders.
CANDIDATE_K = 50
#: Optimiser steps the ranker takes at least (epochs follow from the number of training lists),
#: so a small validation set still trains it; at most ``MAX_EPOCHS`` passes.
MIN_STEPS = 300
MAX_EPOCHS = 40
#: Profile folds of the out-of-fold validation scores the dampening exponent is chosen on.
FOLDS = 2
#: The source whose validation coverage@10 the dampened order must reach (the baseline to beat).
COVERAGE_REFERENCE = "recency_ease"


class CandidateCollector:
    """The candidate lists of every generator of a run, for the validation and the test profiles.

    ``training.evaluation.evaluate_model`` hands each generator here twice: fitted on the
    validation train part (``add_validation``) and on all of train (``add_test``); only the lists
    are kept, so no fitted model outlives its own evaluation.
    """

    def __init__(self, validation: Split, split: Split, k: int = CANDIDATE_K) -> None:
        self.validation = validation
        self.split = split
        self.k = k
        self.validation_users = validation.test_users
        self.test_users = split.test_users
        self.validation_lists: dict[str, pd.DataFrame] = {}
        self.test_lists: dict[str, pd.DataFrame] = {}

    def add_validation(self, name: str, model: CandidateGenerator) -> None:
        """Lists of ``model`` (fitted on the validation train part) for the validation profiles."""
        from training.candidates import candidate_lists

        self.validation_lists[name] = candidate_lists({name: model}, self.validation_users, self.k)

    def add_test(self, name: str, model: CandidateGenerator) -> None:
        """Lists of ``model`` (fitted on all of train) for the test profiles."""
        from training.candidates import candidate_lists

        self.test_lists[name] = candidate_lists({name: model}, self.test_users, self.k)

    @property
    def sources(self) -> list[str]:
        """Generators with lists on both sides, in the order they were added."""
        return [s for s in self.validation_lists if s in self.test_lists]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread while the small ranker trains and scores, then as it was.

    Its batches are a few thousand rows through a tiny MLP: extra intra-op threads only wait on
    each other, and on a shared 2-core machine they made a 40-epoch fit take minutes instead of seconds.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ranker_params(n_lists: int, seed: int, batch_size: int = 512) -> dict[str, Any]:
    """The ranker's params for ``n_lists`` lists: epochs for ``MIN_STEPS`` steps (3 to ``MAX_EPOCHS``)."""
    batches = max(1, math.ceil(n_lists / batch_size))
    return {
        "epochs": int(min(MAX_EPOCHS, max(3, math.ceil(MIN_STEPS / batches)))),
        "batch_size": batch_size,
        "seed": seed,
    }


def scaled_per_user(data: RankerData, scores: np.ndarray) -> np.ndarray:
    """Ranker scores scaled to [0, 1] within each profile's candidate union (min to max), like the blend's."""
    codes = pd.factorize(data.frame["user_id"])[0]
    frame = pd.DataFrame({"u": codes, "s": np.asarray(scores, np.float64)})
    low = frame.groupby("u")["s"].transform("min").to_numpy()
    span = frame.groupby("u")["s"].transform("max").to_numpy() - low
    span[~(span > 0)] = 1.0
    return (frame["s"].to_numpy() - low) / span  # type: ignore[no-any-return]


def dampened(data: RankerData, scores: np.ndarray, counts: pd.Series, exponent: float) -> np.ndarray:
    """``models.blend.dampen`` on a candidate frame: scaled scores over ``(1 + the title's count) ** exponent``.

    ``counts`` is title id (str) → count; the ranker passes ``exposure_counts`` (titles absent count 0).
    """
    scaled = scaled_per_user(data, scores)
    if exponent == 0:
        return scaled
    count = data.frame["title_id"].astype(str).map(counts).fillna(0.0).to_numpy(np.float64)
    return scaled / np.power(1.0 + count, exponent)  # type: ignore[no-any-return]


def exposure_counts(data: RankerData, scores: np.ndarray, k: int = 10) -> pd.Series:
    """title id (str) → profiles whose undampened top ``k`` (by ``scores``) holds it: what the ranker dampens by.

    coverage@10 counts the titles in any profile's top 10, so the propensity that keeps a title out
    of the others' lists is how many top 10s it already fills, not how often it was watched: on a
    catalog where every title is watched often (a 20-core subset) watch counts hardly separate the
    titles the ranker puts everywhere from the rest, exposure does. Read from the order itself, so
    validation (out-of-fold scores) and test (the served scores) each use their own; no label enters.
    """
    top = order_by_ranker(data, scores, k)
    counts = pd.Series([t for titles in top.values() for t in titles], dtype=object).value_counts()
    counts.index = counts.index.astype(str)
    return counts.astype(np.float64)


def out_of_fold_scores(
    data: RankerData, has_positive: np.ndarray, params: dict[str, Any], folds: int = FOLDS
) -> np.ndarray:
    """Each validation row scored by a ranker fitted on the other folds' profiles (never on its own).

    Profiles are dealt to folds by a seeded permutation; each fold's ranker trains on the rows of
    the other folds' profiles that have a positive, with the same params as the final ranker.
    """
    from models.ranker import NeuralRanker

    codes, uniques = pd.factorize(data.frame["user_id"])
    rng = np.random.default_rng(int(params.get("seed", 0)))
    fold_of_user = rng.permutation(len(uniques)) % folds
    fold = fold_of_user[codes]
    out = np.zeros(len(data.frame), np.float64)
    for f in range(folds):
        fit_rows = (fold != f) & has_positive
        if not data.frame["label"].to_numpy()[fit_rows].any():
            continue
        ranker = NeuralRanker(**params)
        with one_torch_thread():
            ranker.fit(data.matrix(fit_rows), data.groups(fit_rows), data.labels(fit_rows), data.columns)
            out[fold == f] = ranker.score(data.matrix(fold == f))
    return out


def choose_ranker_dampening(
    collector: CandidateCollector, data: RankerData, oof: np.ndarray
) -> tuple[float, dict[str, Any]]:
    """The dampening exponent of the ranker's order, chosen on out-of-fold validation scores.

    The blend's rule (``models.blend.pick_dampening``) on the curve of ``DAMPENING_GRID``: within
    the noise share of the undampened ndcg@10, the smallest exponent reaching the validation
    coverage@10 of ``COVERAGE_REFERENCE``'s lists (when that source ran), else the most coverage.
    """
    from models.blend import DAMPENING_GRID, pick_dampening
    from training.evaluation import score_ranked

    counts = exposure_counts(data, oof)
    curve: list[dict[str, float]] = []
    for exponent in DAMPENING_GRID:
        metrics = score_ranked(order_by_ranker(data, dampened(data, oof, counts, exponent)), collector.validation)
        curve.append(
            {
                "exponent": exponent,
                "ndcg@10": round(metrics["ndcg@10"], 5),
                "coverage@10": round(metrics["coverage@10"], 5),
            }
        )
    reference = None
    if COVERAGE_REFERENCE in collector.validation_lists:
        lists = collector.validation_lists[COVERAGE_REFERENCE].sort_values(["user_id", "rank"], kind="mergesort")
        ranked = {str(u): g.tolist() for u, g in lists.groupby("user_id", sort=False)["title_id"]}
        reference = score_ranked(ranked, collector.validation)["coverage@10"]
    exponent = pick_dampening(curve, reference)
    record = {"chosen": exponent, "reference": COVERAGE_REFERENCE, "reference_coverage@10": reference, "curve": curve}
    return exponent, record


def served_coverage(ranked: dict[str, list[str]], users: list[str], n_items: int) -> float:
    """coverage@10 of the lists served to ``users`` (the protocol's: distinct top-10 titles / catalog).

    Needs no held-out title: only who is served and what they are served.
    """
    from training.metrics import coverage_at_k

    return coverage_at_k([ranked.get(u, []) for u in users], n_items, 10)


def served_coverage_curve(
    collector: CandidateCollector, test: RankerData, scores: np.ndarray
) -> tuple[list[float], float | None]:
    """coverage@10 of the final ranker's served order at each ``DAMPENING_GRID`` exponent, and the reference's.

    The served order is the one ``evaluate_ranker`` scores (the refit generators' candidates, the
    final ranker, dampened by its own ``exposure_counts``); the reference is ``COVERAGE_REFERENCE``'s
    refit lists for the same profiles (None when that source did not run). No held-out title is read.
    """
    from models.blend import DAMPENING_GRID

    users = collector.test_users
    n_items = int(collector.split.train["item_id"].nunique())
    counts = exposure_counts(test, scores)
    curve = [
        served_coverage(order_by_ranker(test, dampened(test, scores, counts, e)), users, n_items)
        for e in DAMPENING_GRID
    ]
    reference = None
    if COVERAGE_REFERENCE in collector.test_lists:
        lists = collector.test_lists[COVERAGE_REFERENCE].sort_values(["user_id", "rank"], kind="mergesort")
        ranked = {str(u): g.tolist() for u, g in lists.groupby("user_id", sort=False)["title_id"]}
        reference = served_coverage(ranked, users, n_items)
    return curve, reference


def pick_served_dampening(record: dict[str, Any], served: list[float], reference: float | None) -> float:
    """``pick_dampening`` on the out-of-fold ndcg@10 curve with the served coverage: the ranker's rule.

    ndcg (which exponents are allowed) comes from validation only; the coverage each allowed
    exponent reaches, and the coverage to reach, from the served lists (``served_coverage_curve``).
    ``record`` (from ``choose_ranker_dampening``) gains the served curve, the reference and the choice.
    """
    from models.blend import pick_dampening

    curve = [
        {"exponent": c["exponent"], "ndcg@10": c["ndcg@10"], "coverage@10": round(v, 5)}
        for c, v in zip(record["curve"], served, strict=True)
    ]
    exponent = pick_dampening(curve, reference)
    record["validation_rule"] = record["chosen"]  # what validation coverage alone would have chosen
    record["chosen"] = exponent
    record["served_coverage@10"] = [c["coverage@10"] for c in curve]
    record["served_reference_coverage@10"] = None if reference is None else round(reference, 5)
    return exponent


def order_by_ranker(data: RankerData, scores: np.ndarray, n: int = 20) -> dict[str, list[str]]:
    """user_id → the top ``n`` of the candidate union by ranker score (ties by title id)."""
    frame = data.frame[["user_id", "title_id"]].copy()
    frame["score"] = scores
    frame = frame.sort_values(["user_id", "score", "title_id"], ascending=[True, False, True], kind="mergesort")
    return {str(u): g.head(n).tolist() for u, g in frame.groupby("user_id", sort=False)["title_id"]}


def evaluate_ranker(collector: CandidateCollector, seed: int = 0) -> dict[str, Any]:
    """Fit the ranker on the validation lists, order the test lists with it, and score them.

    Returns:
        The protocol's metrics (as ``training.evaluation.evaluate_model`` reports them), the fit time,
        and params: the ranker's own, its candidate sources and the size of its training data.

    Raises:
        ValueError: no validation profile has a watched-next title among its candidates.
    """
    from models.ranker import NeuralRanker
    from training.evaluation import score_ranked

    sources = collector.sources
    started = time.perf_counter()
    train = protocol_ranker_data(
        pd.concat([collector.validation_lists[s] for s in sources], ignore_index=True),
        sources,
        collector.validation.train,
        collector.validation.test_items(),
    )
    has_positive = train.frame.groupby("user_id", sort=False)["label"].transform("max").to_numpy() > 0
    positives = int(train.frame["label"].sum())
    if not positives:
        raise ValueError("no validation profile watched any of its candidates next; the ranker has nothing to learn")
    params = ranker_params(positives, seed)
    _, record = choose_ranker_dampening(collector, train, out_of_fold_scores(train, has_positive, params))
    ranker = NeuralRanker(**params)
    with one_torch_thread():
        ranker.fit(train.matrix(has_positive), train.groups(has_positive), train.labels(has_positive), train.columns)
    fit_seconds = time.perf_counter() - started
    test = protocol_ranker_data(
        pd.concat([collector.test_lists[s] for s in sources], ignore_index=True), sources, collector.split.train, {}
    )
    with one_torch_thread():
        scores = ranker.score(test.matrix())
    exponent = pick_served_dampening(record, *served_coverage_curve(collector, test, scores))
    counts = exposure_counts(test, scores)
    ranked = order_by_ranker(test, dampened(test, scores, counts, exponent))
    metrics = score_ranked(ranked, collector.split)
    # For the record only (the row is the order chosen above): the test metrics of the undampened
    # order and of the exponent validation coverage alone would have chosen.
    for key, other in (("undampened_test", 0.0), ("validation_rule_test", record["validation_rule"])):
        if other != exponent:
            plain = score_ranked(order_by_ranker(test, dampened(test, scores, counts, other)), collector.split)
            record[key] = {k: round(plain[k], 4) for k in ("ndcg@10", "recall@20", "coverage@10")}
    logger.info(
        "ranker over %s: %d training rows, %d positives; test %s", sources, len(train.frame), positives, metrics
    )
    return {
        **{k: round(v, 4) for k, v in metrics.items()},
        "fit_seconds": round(fit_seconds, 2),
        "tuning_seconds": 0.0,
        "params": {
            **{k: v for k, v in ranker.params().items() if k != "seed"},
            "sources": sources,
            "candidate_k": collector.k,
            "training_rows": int(has_positive.sum()),
            "positives": positives,
            "dampening": exponent,
        },
        "dampening": record,
    }
