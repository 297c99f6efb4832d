"""The neural ranker under ``marquee evaluate``: trained on validation only, scored on test like any model.

The ranker re-scores the union of the candidate generators' top ``CANDIDATE_K``. Under the
protocol it learns from the validation split alone: every candidate generator evaluated in the
run is fitted on the validation train part (with its tuned params), their lists for the
validation profiles are labelled by what each profile watched next (the validation test part),
and the ranker is fitted on those rows. On test, the same generators fitted on all of train
propose the lists, the ranker orders each profile's union, and the protocol's metrics are taken
on that order — the same table, the same champion rule. Nothing of the test split reaches the
ranker's training.

Coverage: the ranker's test order is served under the protocol's coverage floor like every other
model's lists (``training.evaluation.served_with_floor``, ``models.coverage_floor``). An exposure
dampening of the ranker's scores, with its exponent chosen on out-of-fold validation scores, came
before it: within the noise band of ndcg@10 it moved coverage by less than the gap to recency-EASE
(mt/full 0.142 vs 0.155) and elsewhere cost up to 4 % of ndcg@10 (mt/core20); the floor reaches
the reference on both at 0.1–0.2 % (docs/quality.md, 2026-12-06, night).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.base import CandidateGenerator
from training.protocol import Split
from training.ranker_data import RankerData, protocol_ranker_data

if TYPE_CHECKING:
    from models.ranker import NeuralRanker

logger = logging.getLogger(__name__)

#: The ranker's registry name (``models.ranker.NeuralRanker``).
RANKER = "neural-ranker"
#: Titles each candidate generator proposes per profile; their union is what the ranker orders.
CANDIDATE_K = 50
#: Optimiser steps the ranker takes at least (epochs follow from the number of training lists),
#: so a small validation set still trains it; at most ``MAX_EPOCHS`` passes.
MIN_STEPS = 300
MAX_EPOCHS = 40


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


def order_by_ranker(data: RankerData, scores: np.ndarray, n: int = 20) -> dict[str, list[str]]:
    """user_id → the top ``n`` of the candidate union by ranker score (ties by title id)."""
    frame = data.frame[["user_id", "title_id"]].copy()
    frame["score"] = scores
    frame = frame.sort_values(["user_id", "score", "title_id"], ascending=[True, False, True], kind="mergesort")
    return {str(u): g.head(n).tolist() for u, g in frame.groupby("user_id", sort=False)["title_id"]}


def fit_validation_ranker(
    lists: pd.DataFrame, sources: Sequence[str], validation: Split, seed: int
) -> tuple[NeuralRanker, RankerData, np.ndarray]:
    """The ranker fitted on validation candidate lists, labelled by what each profile watched next.

    Only profiles with a watched-next title among their candidates train it.

    Returns:
        The ranker, its training rows (``protocol_ranker_data``) and which of them trained it.

    Raises:
        ValueError: no validation profile has a watched-next title among its candidates.
    """
    from models.ranker import NeuralRanker

    data = protocol_ranker_data(lists, sources, validation.train, validation.test_items())
    has_positive = data.frame.groupby("user_id", sort=False)["label"].transform("max").to_numpy() > 0
    positives = int(data.frame["label"].sum())
    if not positives:
        raise ValueError("no validation profile watched any of its candidates next; the ranker has nothing to learn")
    ranker = NeuralRanker(**ranker_params(positives, seed))
    with one_torch_thread():
        ranker.fit(data.matrix(has_positive), data.groups(has_positive), data.labels(has_positive), data.columns)
    return ranker, data, has_positive


def rank_lists(
    ranker: NeuralRanker, lists: pd.DataFrame, sources: Sequence[str], train: pd.DataFrame, n: int
) -> dict[str, list[str]]:
    """user_id → the top ``n`` of its candidate union ordered by ``ranker`` (features from ``train``)."""
    data = protocol_ranker_data(lists, sources, train, {})
    with one_torch_thread():
        scores = ranker.score(data.matrix())
    return order_by_ranker(data, scores, n)


def evaluate_ranker(collector: CandidateCollector, seed: int = 0, coverage_floor: int | None = None) -> dict[str, Any]:
    """Fit the ranker on the validation lists, order the test lists with it, and score them.

    With ``coverage_floor`` (distinct titles, the reference baseline's) the ranker's order is
    served under the coverage floor like every other model's lists (``training.evaluation.served_with_floor``).

    Returns:
        The protocol's metrics (as ``training.evaluation.evaluate_model`` reports them), the fit time,
        and params: the ranker's own, its candidate sources and the size of its training data.

    Raises:
        ValueError: no validation profile has a watched-next title among its candidates.
    """
    from training.evaluation import list_depth, scored_row

    sources = collector.sources
    started = time.perf_counter()
    ranker, train, has_positive = fit_validation_ranker(
        pd.concat([collector.validation_lists[s] for s in sources], ignore_index=True),
        sources,
        collector.validation,
        seed,
    )
    positives = int(train.frame["label"].sum())
    fit_seconds = time.perf_counter() - started
    ranked = rank_lists(
        ranker,
        pd.concat([collector.test_lists[s] for s in sources], ignore_index=True),
        sources,
        collector.split.train,
        list_depth(coverage_floor),
    )
    row = scored_row(ranked, collector.split, coverage_floor)
    logger.info("ranker over %s: %d training rows, %d positives; test %s", sources, len(train.frame), positives, row)
    return {
        **row,
        "fit_seconds": round(fit_seconds, 2),
        "tuning_seconds": 0.0,
        "params": {
            **{k: v for k, v in ranker.params().items() if k != "seed"},
            "sources": sources,
            "candidate_k": collector.k,
            "training_rows": int(has_positive.sum()),
            "positives": positives,
        },
    }
