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


def search_space(name: str) -> dict[str, list[Any]]:
    """Candidate values per param of the registered model ``name``: its own ``tuning_space`` (empty: nothing to tune).

    Each model declares its space on its class, so adding a model touches only its own file.
    """
    from models.registry import model_class

    return {k: list(v) for k, v in getattr(model_class(name), "tuning_space", {}).items()}


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
