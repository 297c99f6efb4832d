"""Candidate generators in the pipeline: build by name, fit, list candidates, score them alone.

The candidate models themselves live in ``models/`` and are found by name through
``models.registry``; this module only drives them the same way for every name,
so adding a model to the registry is all it takes to train and evaluate it here.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.errors import InvalidInputError
from models.base import CandidateGenerator
from models.registry import model_class, model_names
from training.metrics import summarise
from training.protocol import to_interactions

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


def candidate_names() -> list[str]:
    """Registered names that are candidate generators (rankers excluded)."""
    names = []
    for name in model_names():
        try:
            cls = model_class(name)
        except (ImportError, AttributeError):  # a model whose optional dependency is missing
            continue
        if issubclass(cls, CandidateGenerator):
            names.append(name)
    return names


def check_model_names(names: Sequence[str]) -> list[str]:
    """Validate ``--models``: every name must be a registered candidate generator.

    Raises:
        InvalidInputError: an unknown name, or none at all; lists the known ones.
    """
    known = candidate_names()
    chosen = [n.strip() for n in names if n.strip()]
    if not chosen:
        raise InvalidInputError(f"no candidate model given; choose from: {', '.join(known) or 'none registered'}")
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise InvalidInputError(
            f"unknown model {', '.join(map(repr, unknown))}; known candidate models: {', '.join(known) or 'none'}"
        )
    if len(set(chosen)) != len(chosen):
        raise InvalidInputError(f"model names must be unique, got {chosen}")
    return chosen


def build_model(name: str, params: Mapping[str, Any] | None = None, seed: int | None = None) -> CandidateGenerator:
    """Instantiate a registered candidate generator, passing the seed when its constructor takes one."""
    cls = model_class(name)
    if not issubclass(cls, CandidateGenerator):
        raise InvalidInputError(f"{name!r} is not a candidate generator")
    kwargs = dict(params or {})
    accepted = inspect.signature(cls.__init__).parameters
    for key in ("seed", "random_state"):
        if seed is not None and key in accepted and key not in kwargs:
            kwargs[key] = seed
    return cls(**kwargs)


def model_params(model: CandidateGenerator, given: Mapping[str, Any]) -> dict[str, Any]:
    """The params worth logging: the model's own ``params()`` when it has one, else what was passed."""
    found = getattr(model, "params", None)
    if callable(found):
        found = found()
    return dict(found) if isinstance(found, Mapping) else dict(given)


def fit_candidates(
    names: Sequence[str],
    train: pd.DataFrame,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    context: Mapping[str, Any] | None = None,
    seed: int = 42,
    progress: bool = False,
) -> dict[str, FittedCandidate]:
    """Fit each named model on protocol-frame ``train``; ``context`` goes to every ``fit`` (e.g. ``titles``)."""
    if train.empty:
        raise InvalidInputError("no training interactions to fit candidate models on")
    interactions = to_interactions(train)
    fitted: dict[str, FittedCandidate] = {}
    for name in tqdm(names, desc="fit candidates", unit="model", disable=not progress):
        given = dict((params or {}).get(name, {}))
        model = build_model(name, given, seed)
        started = time.perf_counter()
        model.fit(interactions, **dict(context or {}))
        seconds = time.perf_counter() - started
        logger.info("fitted %s on %d interactions in %.1f s", name, len(interactions), seconds)
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
                recs = model.recommend_batch(batch, n=k, filter_seen=True)
                sizes = np.array([len(r.item_ids) for r in recs], dtype=np.int64)
                if sizes.sum() == 0:
                    bar.update(len(batch))
                    continue
                frames.append(
                    pd.DataFrame(
                        {
                            "user_id": np.repeat(np.asarray(batch, dtype=object), sizes),
                            "title_id": np.concatenate([np.asarray(r.item_ids, dtype=object) for r in recs]),
                            "source": source,
                            "score": np.concatenate([np.asarray(r.scores, dtype=np.float32) for r in recs]),
                            "rank": np.concatenate([np.arange(1, s + 1, dtype=np.float32) for s in sizes]),
                        }
                    )
                )
                bar.update(len(batch))
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
