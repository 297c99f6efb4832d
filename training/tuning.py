"""Hyper-parameter search on the validation split only (never on test).

A deterministic coordinate search: start from the model's defaults, then for
each parameter in turn try its candidate values with the others held at their
best so far. It needs far fewer fits than a full grid (sum, not product, of the
value counts) and gives the same answer on every run, which a seeded random
search over a few trials does not guarantee across machines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from training.protocol import Split, validation_split

logger = logging.getLogger(__name__)

#: Candidate values per model, searched on validation. Empty: nothing to tune.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "popularity": {},
    "trending": {"half_life_days": [7.0, 30.0, 180.0]},
    "ease": {"lam": [100.0, 200.0, 500.0, 1000.0]},
    "recency_ease": {"lam": [200.0, 500.0, 1000.0], "half_life": [2.0, 3.0, 5.0]},
    "item_knn": {"neighbours": [200, 1000], "half_life": [2.0, 3.0, 5.0]},
    "seqknn": {
        "seq_half_life": [2.0, 4.0, 8.0],
        "step_decay": [0.9, 0.95],
        "knn_weight": [0.25, 0.5, 1.0],
        "neighbours": [200, 1000],
        "knn_half_life": [3.0, 5.0],
        "time_weight": [0.0, 0.1, 0.25],
        "time_tau_days": [7.0, 30.0, 180.0],
    },
    "als": {"factors": [32, 64], "regularization": [0.01, 0.1], "alpha": [1.0, 10.0]},
    "lightfm": {"no_components": [32, 64]},
    "sasrec": {},
}


@dataclass
class TuningResult:
    """Best parameters on validation and every trial (params, validation ndcg@10)."""

    params: dict[str, Any]
    score: float
    trials: list[tuple[dict[str, Any], float]] = field(default_factory=list)


Objective = Callable[[Mapping[str, Any], Split], float]


def coordinate_search(
    objective: Objective,
    split: Split,
    space: Mapping[str, Sequence[Any]],
    start: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Maximise ``objective(params, split)`` one parameter at a time (one pass, ties keep the earlier value).

    Args:
        objective: fits a model with ``params`` on ``split.train`` and scores it on ``split.test``.
        split: the validation split.
        space: parameter → candidate values.
        start: parameters to begin with (defaults to each first candidate value ... or the model default).
    """
    best = dict(start or {})
    seen: dict[tuple[tuple[str, Any], ...], float] = {}

    def run(params: dict[str, Any]) -> float:
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen[key] = objective(params, split)
            logger.info("validation ndcg@10 %.4f with %s", seen[key], params)
        return seen[key]

    best_score = run(best)
    for name, values in space.items():
        for value in values:
            candidate = {**best, name: value}
            score = run(candidate)
            if score > best_score + 1e-9:
                best, best_score = candidate, score
    trials = [(dict(k), v) for k, v in seen.items()]
    return TuningResult(params=best, score=best_score, trials=trials)


def tune_on_validation(
    objective: Objective,
    train: pd.DataFrame,
    space: Mapping[str, Sequence[Any]],
    start: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Split ``train`` into validation train/test (last 20% per user) and run ``coordinate_search``."""
    return coordinate_search(objective, validation_split(train), space, start)
