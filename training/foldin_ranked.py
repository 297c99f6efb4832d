"""Fold-in quality of the champion: the ranker over every candidate source, served from the request's history.

``training.foldin`` measures each candidate generator alone. What a viewer is
served is the champion's list: the neural ranker ordering the union of the
generators' candidates, with profile features computed from the request's
history (``serving.context_features``). This protocol measures that list the
same way, fold-in against refit, on the same held-out users B and items:

* *refit*: every generator is fitted on the train interactions of A and B; the
  ranker learns from the validation lists of all users (``validation_split`` of
  that train set, as ``marquee evaluate`` trains it); B's candidates come from
  the fitted user state;
* *fold-in*: every generator is fitted on A's train interactions only; the
  ranker learns from A's validation lists only, each proposed from the profile's
  history as the model server proposes; B's candidates come from each
  generator's ``recommend(history=...)`` with B's train history (oldest first),
  as the model server asks.

In both arms the ranker's features for B are computed from the same train frame
(A and B): a profile's own counts are what its request carries, a title's are
what the feature store holds, which includes every viewer's events. Lists are
ordered by the ranker and scored with ``ndcg@10`` against B's held-out items.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from models.base import CandidateGenerator
from models.ranker import NeuralRanker
from training.candidates import candidate_lists, concat_lists, long_lists
from training.evaluation import fit_model
from training.foldin import HELDOUT_SHARE, foldin_split, histories_of, mean_ndcg, recommend_from_history
from training.pipeline import DEFAULT_MODELS
from training.protocol import validation_split
from training.ranker_evaluation import CANDIDATE_K, fit_validation_ranker, rank_lists

logger = logging.getLogger(__name__)

#: The candidate sources ``marquee train`` bundles into the default champion.
CHAMPION_SOURCES: tuple[str, ...] = DEFAULT_MODELS


def foldin_candidate_lists(
    models: Mapping[str, CandidateGenerator], histories: Mapping[str, list[str]], k: int
) -> pd.DataFrame:
    """``candidate_lists``' long frame for users known only by their history (``recommend(history=...)``).

    A source that knows no title of a history proposes nothing for that user, as the
    model server leaves it out of the ranker's candidates.
    """
    frames: list[pd.DataFrame] = []
    for source, model in models.items():
        asked = {user: recommend_from_history(model, history, k) for user, history in histories.items()}
        known = {user: rec for user, rec in asked.items() if rec is not None}
        frame = long_lists(source, list(known), list(known.values()))
        if frame is not None:
            frames.append(frame)
    return concat_lists(frames)


def _arm(
    train: pd.DataFrame,
    sources: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    seed: int,
    item_features: Mapping[str, Sequence[str]] | None,
    k: int,
    *,
    from_history: Sequence[bool],
) -> tuple[dict[bool, NeuralRanker], dict[str, CandidateGenerator]]:
    """Rankers trained on ``train``'s validation lists, and the generators fitted on all of ``train``.

    One ranker per ``from_history`` value: ``True``, its validation lists come from each
    profile's history (``recommend(history=...)``), as the model server proposes; ``False``,
    from the fitted user state, as ``marquee train`` builds them.
    """
    validation = validation_split(train)
    lists: dict[bool, list[pd.DataFrame]] = {flag: [] for flag in from_history}
    fitted: dict[str, CandidateGenerator] = {}
    # Only a ranker of history lists needs the validation profiles' histories.
    histories = histories_of(validation.train, validation.test_users) if True in from_history else {}
    for name in sources:
        chosen = dict(params.get(name, {}))
        model = fit_model(name, chosen, validation.train, seed, item_features)
        for flag in from_history:
            lists[flag].append(
                foldin_candidate_lists({name: model}, histories, k)
                if flag
                else candidate_lists({name: model}, validation.test_users, k)
            )
        fitted[name] = fit_model(name, chosen, train, seed, item_features)
    rankers = {
        flag: fit_validation_ranker(pd.concat(frames, ignore_index=True), sources, validation, seed)[0]
        for flag, frames in lists.items()
    }
    return rankers, fitted


def evaluate_champion_foldin(
    interactions: pd.DataFrame,
    sources: Sequence[str] = CHAMPION_SOURCES,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    heldout_share: float = HELDOUT_SHARE,
    seed: int = 0,
    item_features: Mapping[str, Sequence[str]] | None = None,
    k: int = CANDIDATE_K,
) -> dict[str, float]:
    """ndcg@10 of the champion's ranked list, fold-in and refit, on the held-out users; see the module docstring.

    Args:
        interactions: user_id, item_id, ts (and optionally weight).
        sources: the candidate generators the ranker orders (default: the default champion's).
        params: per generator, hyper-parameters (default: each model's defaults), the same in both arms.
        heldout_share: share of evaluable users that become users B.
        seed: seed of the user draw, the models and the ranker.
        item_features: title_id → tokens for the models that use them.
        k: candidates per generator (what the ranker orders: their union).

    Returns:
        ``foldin``, ``refit``, ``ratio`` (fold-in / refit), ``users`` (|B|), and
        ``foldin_fitted_lists``: the fold-in arm with its ranker trained on lists from the
        fitted user state instead, as ``marquee train`` trains it today (the skew between
        the lists a ranker learns from and the lists it orders at serving time); and
        ``refit_ranker_a``: the refit generators' lists ordered by that ranker of users A,
        which splits the gap into the ranker's share (it never learnt from users B) and the
        generators' fold-in share.
    """
    fold = foldin_split(interactions, heldout_share=heldout_share, seed=seed)
    chosen = params or {}
    relevant = fold.relevant()
    histories = fold.histories()
    users = list(relevant)
    train = fold.split.train

    rankers, fitted = _arm(train, sources, chosen, seed, item_features, k, from_history=(False,))
    refit_lists = candidate_lists(fitted, users, k)
    refit = mean_ndcg(rank_lists(rankers[False], refit_lists, sources, train, 10), relevant)
    rankers, fitted = _arm(fold.train_a, sources, chosen, seed, item_features, k, from_history=(True, False))
    lists = foldin_candidate_lists(fitted, {u: histories[u] for u in users}, k)
    found = {
        flag: mean_ndcg(rank_lists(ranker, lists, sources, train, 10), relevant) for flag, ranker in rankers.items()
    }
    logger.info("fold-in champion over %s: %.4f vs refit %.4f", list(sources), found[True], refit)
    return {
        "foldin": found[True],
        "refit": refit,
        "ratio": found[True] / refit if refit > 0 else float("nan"),
        "users": float(len(users)),
        "foldin_fitted_lists": found[False],
        "refit_ranker_a": mean_ndcg(rank_lists(rankers[False], refit_lists, sources, train, 10), relevant),
    }
