"""The neural ranker under ``marquee evaluate``: trained on validation only, scored on test like any model.

The ranker re-scores the union of the candidate generators' top ``CANDIDATE_K``. Under the
protocol it learns from the validation split alone: every candidate generator evaluated in the
run is fitted on the validation train part (with its tuned params), their lists for the
validation profiles are labelled by what each profile watched next (the validation test part),
and the ranker is fitted on those rows. On test, the same generators fitted on all of train
propose the lists, the ranker orders each profile's union, and the protocol's metrics are taken
on that order — the same table, the same champion rule. Nothing of the test split reaches the
ranker's training.

Coverage: like the blend, the ranker's order is popularity-dampened by an exponent chosen on
validation (``models.blend.pick_dampening``, the same rule). The ranker learns from the
validation lists, so its own scores there are in-sample; the exponent is chosen on out-of-fold
scores instead (``FOLDS`` rankers, each fitted on the other folds' profiles and scoring its
own), against the coverage of recency-EASE's lists on the same profiles.
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
    """``models.blend.dampen`` on a candidate frame: scaled scores over ``(1 + title watch count) ** exponent``."""
    scaled = scaled_per_user(data, scores)
    if exponent == 0:
        return scaled
    watched = data.frame["title_id"].astype(str).map(counts).fillna(0.0).to_numpy(np.float64)
    return scaled / np.power(1.0 + watched, exponent)  # type: ignore[no-any-return]


def watch_counts(train: pd.DataFrame) -> pd.Series:
    """title id (str) → watches in a protocol train frame (the propensity the dampening divides by)."""
    counts = train.groupby("item_id").size().astype(np.float64)
    counts.index = counts.index.astype(str)
    return counts


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

    counts = watch_counts(collector.validation.train)
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
    exponent, record = choose_ranker_dampening(collector, train, out_of_fold_scores(train, has_positive, params))
    ranker = NeuralRanker(**params)
    with one_torch_thread():
        ranker.fit(train.matrix(has_positive), train.groups(has_positive), train.labels(has_positive), train.columns)
    fit_seconds = time.perf_counter() - started
    test = protocol_ranker_data(
        pd.concat([collector.test_lists[s] for s in sources], ignore_index=True), sources, collector.split.train, {}
    )
    with one_torch_thread():
        scores = ranker.score(test.matrix())
    ranked = order_by_ranker(test, dampened(test, scores, watch_counts(collector.split.train), exponent))
    metrics = score_ranked(ranked, collector.split)
    if exponent > 0:  # for the record only (the row is the dampened order, chosen on validation)
        plain = score_ranked(order_by_ranker(test, scores), collector.split)
        record["undampened_test"] = {k: round(plain[k], 4) for k in ("ndcg@10", "recall@20", "coverage@10")}
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
