"""Candidate generators in the pipeline: build by name, fit, list candidates, score them alone.

The candidate models themselves live in ``models/`` and are found by name through
``models.registry``; this module only drives them the same way for every name,
so adding a model to the registry is all it takes to train and evaluate it here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.errors import InvalidInputError
from models.base import CandidateGenerator, Recommendation
from training.evaluation import (
    RANKER,
    candidate_model_names,
    check_model_names,
    fit_model,
    score_split,
    title_features,
)
from training.metrics import summarise
from training.protocol import Split
from training.tuning import TuningResult, coordinate_search, search_space

logger = logging.getLogger(__name__)

#: Users per ``recommend_batch`` call when listing candidates (bounded memory, a live progress bar).
BATCH_USERS = 1024


@dataclass(frozen=True)
class FittedCandidate:
    """One fitted candidate generator, its constructor params and how long ``fit`` took."""

    name: str
    model: CandidateGenerator
    params: dict[str, Any]
    fit_seconds: float


def check_models(names: Sequence[str]) -> list[str]:
    """Validate ``--models``: registered candidate generators, at least one.

    Raises:
        InvalidInputError: an unknown name (the message lists the known ones), or none at all.
    """
    chosen = [n.strip() for n in names if n.strip()]
    if not chosen:
        known = ", ".join(candidate_model_names()) or "none registered"
        raise InvalidInputError(f"no candidate model given; choose from: {known}")
    if RANKER in chosen:
        raise InvalidInputError(
            f"{RANKER} is the ranker over the candidates, not a candidate model; it trains unless --no-ranker is given"
        )
    return check_model_names(chosen)


def model_params(model: CandidateGenerator, given: Mapping[str, Any]) -> dict[str, Any]:
    """The params worth logging: the model's own ``params`` (attribute or method) when it has them."""
    found = getattr(model, "params", None)
    if callable(found):
        found = found()
    return dict(found) if isinstance(found, Mapping) else dict(given)


def _budgeted_space(name: str, trials: int) -> dict[str, list[Any]]:
    """The model's search space cut so that a coordinate search makes at most ``trials`` fits."""
    space: dict[str, list[Any]] = {}
    budget = trials - 1  # the starting point is one fit
    for param, values in search_space(name).items():
        if budget <= 0:
            break
        space[param] = list(values)[:budget]
        budget -= len(space[param])
    return space


def tune_candidates(
    names: Sequence[str], split: Split, *, trials: int, seed: int, progress: bool = False
) -> dict[str, TuningResult]:
    """Tune each model on the validation split (fit on ``split.train``, ndcg@10 on ``split.test``).

    Uses the evaluation engineer's coordinate search with at most ``trials`` fits per model.
    """
    results: dict[str, TuningResult] = {}
    for name in tqdm(names, desc="tune candidates", unit="model", disable=not progress):
        space = _budgeted_space(name, trials)
        if not space:
            continue

        def objective(params: Mapping[str, Any], val: Split, name: str = name) -> float:
            return score_split(fit_model(name, params, val.train, seed), val)["ndcg@10"]

        results[name] = coordinate_search(objective, split, space)
        logger.info("tuned %s: %s (validation ndcg@10 %.4f)", name, results[name].params, results[name].score)
    return results


def item_feature_tokens(titles: pd.DataFrame, episodes: pd.DataFrame) -> dict[str, list[str]]:
    """item_id → metadata tokens for the hybrid models (LightFM), episodes included.

    Watch events of a series name the episode, so each episode gets its series'
    tokens (genres, maturity, decade, cast, director, tags): that is what lets a
    hybrid model relate an episode to titles it shares metadata with.
    """
    if titles.empty:
        return {}
    tokens = title_features(titles)
    if not episodes.empty:
        for episode_id, series_id in zip(episodes["episode_id"], episodes["series_id"], strict=True):
            if series_id in tokens:
                tokens[str(episode_id)] = tokens[series_id]
    return tokens


def fit_candidates(
    names: Sequence[str],
    train: pd.DataFrame,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 42,
    progress: bool = False,
    item_features: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, FittedCandidate]:
    """Fit each named model on protocol-frame ``train`` with its params (the evaluation engineer's ``fit_model``).

    ``item_features`` (item_id → tokens, see ``item_feature_tokens``) reach the hybrid models.
    """
    if train.empty:
        raise InvalidInputError("no training interactions to fit candidate models on")
    fitted: dict[str, FittedCandidate] = {}
    for name in tqdm(names, desc="fit candidates", unit="model", disable=not progress):
        given = dict((params or {}).get(name, {}))
        started = time.perf_counter()
        model = fit_model(name, given, train, seed, item_features=item_features)
        seconds = time.perf_counter() - started
        logger.info("fitted %s on %d interactions in %.1f s", name, len(train), seconds)
        fitted[name] = FittedCandidate(name, model, model_params(model, given), seconds)
    return fitted


def candidate_lists(
    models: Mapping[str, CandidateGenerator],
    users: Sequence[str],
    k: int,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Top-``k`` unseen titles per user and model, long: ``user_id``, ``title_id``, ``source``, ``score``, ``rank``."""
    frames: list[pd.DataFrame] = []
    total = len(models) * len(users)
    with tqdm(total=total, desc="candidate lists", unit="user", disable=not progress) as bar:
        for source, model in models.items():
            for start in range(0, len(users), BATCH_USERS):
                batch = list(users[start : start + BATCH_USERS])
                frame = long_lists(source, batch, model.recommend_batch(batch, n=k, filter_seen=True))
                if frame is not None:
                    frames.append(frame)
                bar.update(len(batch))
    return concat_lists(frames)


def long_lists(source: str, users: Sequence[str], recs: Sequence[Recommendation]) -> pd.DataFrame | None:
    """One source's lists, one per user, as ``candidate_lists``' long rows (``None``: every list is empty)."""
    sizes = np.array([len(r.item_ids) for r in recs], dtype=np.int64)
    if sizes.sum() == 0:
        return None
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), sizes),
            "title_id": np.concatenate([np.asarray(r.item_ids, dtype=object) for r in recs]),
            "source": source,
            "score": np.concatenate([np.asarray(r.scores, dtype=np.float32) for r in recs]),
            "rank": np.concatenate([np.arange(1, s + 1, dtype=np.float32) for s in sizes]),
        }
    )


def concat_lists(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``long_lists`` frames as one (with the columns even when there is none)."""
    if not frames:
        return pd.DataFrame(columns=["user_id", "title_id", "source", "score", "rank"])
    return pd.concat(frames, ignore_index=True)


def ranked_by_source(lists: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """source → user_id → ranked title ids, from the long frame of ``candidate_lists``."""
    ordered = lists.sort_values(["source", "user_id", "rank"], kind="mergesort")
    out: dict[str, dict[str, list[str]]] = {}
    for (source, user), titles in ordered.groupby(["source", "user_id"], sort=False)["title_id"]:
        out.setdefault(str(source), {})[str(user)] = titles.tolist()
    return out


def evaluate_lists(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], n_items: int
) -> dict[str, float]:
    """The protocol's metrics of ranked lists over the users in ``relevant`` (users without a list score 0)."""
    if not relevant:
        raise InvalidInputError("no validation users to evaluate on; the data is too small")
    return summarise(ranked, relevant, n_items)
