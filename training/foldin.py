"""Fold-in quality: how well a model serves viewers it was never trained on, from their history alone.

The model server keeps no profile state: every request carries the viewer's
history, and each model folds it in (item-kNN, seqknn and EASE score it
directly, ALS solves the user's factors against the fixed item factors, LightFM
averages the history's item embeddings). This protocol measures what that costs
against refitting the model with those viewers in it.

Protocol ``foldin-users-80-20`` (a variant of ``temporal-user-80-20``):

1. the usual split: each user's last 20% of interactions (by time) are held out;
2. a seeded ``heldout_share`` of the users with a test part become users **B**;
   everybody else is users **A**;
3. *fold-in*: the model is fitted on A's train interactions only; each B user's
   train interactions are given at request time (``recommend(user, history=...)``,
   oldest first, capped as serving caps them: ``core.rules.request_history``, the
   newest ``MAX_HISTORY`` titles; the older ones are excluded from the list, as the
   API's page drops every played title) and the top 10 is scored against its test part;
4. *refit*: the same model, same parameters, fitted on A's and B's train
   interactions (the plain protocol's train set); B's top 10 comes from the
   fitted user state (``recommend_batch``), scored on the same test part.

Both lists filter the user's train titles and are scored with the same
``ndcg@10`` on the same users and held-out items; the ratio fold-in / refit is
the figure of merit (goal: ≥ 0.95 for the champion's models).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InvalidInputError
from core.rules import request_history
from models.base import CandidateGenerator, Recommendation
from training.evaluation import fit_model
from training.metrics import ndcg_at_k
from training.protocol import Split, temporal_user_split

logger = logging.getLogger(__name__)

PROTOCOL = "foldin-users-80-20"
#: Share of the evaluable users held out of the fold-in model's training data.
HELDOUT_SHARE = 0.2
#: The user id a fold-in request is made under: nobody's, so no fitted user state can be used.
ANONYMOUS = ""


@dataclass(frozen=True)
class FoldInSplit:
    """The plain protocol's split, with users B held out of the fold-in model's training data.

    Attributes:
        split: the ``temporal-user-80-20`` split of all users (the refit model trains on ``split.train``).
        heldout: users B, sorted.
    """

    split: Split
    heldout: list[str]

    @property
    def train_a(self) -> pd.DataFrame:
        """What the fold-in model trains on: train interactions of users A."""
        train = self.split.train
        return train[~train["user_id"].isin(set(self.heldout))].reset_index(drop=True)

    def histories(self) -> dict[str, list[str]]:
        """User B → its train item ids, oldest first (what the request carries)."""
        return histories_of(self.split.train, self.heldout)

    def relevant(self) -> dict[str, set[str]]:
        """User B → its held-out items."""
        items = self.split.test_items()
        return {u: items[u] for u in self.heldout if u in items}


def histories_of(train: pd.DataFrame, users: Sequence[str]) -> dict[str, list[str]]:
    """User → its item ids in ``train`` (a protocol frame), oldest first: the whole history, of which
    ``recommend_from_history`` sends what a request would carry."""
    mine = train[train["user_id"].isin(set(users))].sort_values(["user_id", "ts"], kind="stable")
    return {str(u): g.tolist() for u, g in mine.groupby("user_id", sort=False)["item_id"]}


def foldin_split(interactions: pd.DataFrame, *, heldout_share: float = HELDOUT_SHARE, seed: int = 0) -> FoldInSplit:
    """Split ``interactions`` (protocol frame) for the fold-in protocol; see the module docstring."""
    if not 0.0 < heldout_share < 1.0:
        raise InvalidInputError(f"heldout_share must be in (0, 1), got {heldout_share}")
    split = temporal_user_split(interactions)
    users = np.asarray(split.test_users)
    rng = np.random.default_rng(seed)
    n = max(1, round(heldout_share * len(users)))
    heldout = sorted(rng.choice(users, size=n, replace=False).tolist())
    return FoldInSplit(split=split, heldout=heldout)


def mean_ndcg(ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]]) -> float:
    return float(np.mean([ndcg_at_k(ranked.get(u, []), items, 10) for u, items in relevant.items()]))


def foldin_lists(model: CandidateGenerator, histories: Mapping[str, list[str]], n: int = 10) -> dict[str, list[str]]:
    """User → top ``n`` from the history alone (fitted user state, if any, is never used)."""
    out: dict[str, list[str]] = {}
    for user, history in histories.items():
        rec = recommend_from_history(model, history, n)
        out[user] = [] if rec is None else rec.item_ids.tolist()  # an empty list scores 0
    return out


def recommend_from_history(model: CandidateGenerator, history: Sequence[str], n: int) -> Recommendation | None:
    """The top ``n`` for a history alone, under nobody's user id; ``None`` when the model knows none of its titles.

    The model is asked as the model server is: with ``core.rules.request_history`` (the
    newest ``MAX_HISTORY`` titles), not the whole history. The older titles are still
    never recommended (the API's page drops every title the profile played), so they
    are excluded from the list rather than shown to the model.
    """
    asked = request_history(history)
    older = set(history).difference(asked)
    try:
        return model.recommend(ANONYMOUS, n, history=asked, exclude=sorted(older))
    except KeyError:
        return None


def refit_lists(model: CandidateGenerator, users: Sequence[str], n: int = 10) -> dict[str, list[str]]:
    """User → top ``n`` from the user state the model fitted."""
    return {u: rec.item_ids.tolist() for u, rec in zip(users, model.recommend_batch(list(users), n), strict=True)}


def evaluate_foldin(
    interactions: pd.DataFrame,
    models: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    heldout_share: float = HELDOUT_SHARE,
    seed: int = 0,
    item_features: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """ndcg@10 of fold-in and refit per model on the held-out users; see the module docstring.

    Args:
        interactions: user_id, item_id, ts (and optionally weight).
        models: registered candidate generators.
        params: per model, hyper-parameters (default: the model's defaults), the same for both fits.
        heldout_share: share of evaluable users that become users B.
        seed: seed of the user draw and of the models.
        item_features: title_id → tokens for the models that use them.

    Returns:
        model → ``{"foldin": ndcg, "refit": ndcg, "ratio": foldin / refit, "users": |B|}``.
    """
    fold = foldin_split(interactions, heldout_share=heldout_share, seed=seed)
    histories = fold.histories()
    relevant = fold.relevant()
    train_a = fold.train_a
    out: dict[str, dict[str, float]] = {}
    for name in models:
        chosen = dict((params or {}).get(name, {}))
        folded = fit_model(name, chosen, train_a, seed, item_features)
        refit = fit_model(name, chosen, fold.split.train, seed, item_features)
        f = mean_ndcg(foldin_lists(folded, {u: histories[u] for u in relevant}), relevant)
        r = mean_ndcg(refit_lists(refit, list(relevant)), relevant)
        out[name] = {"foldin": f, "refit": r, "ratio": f / r if r > 0 else float("nan"), "users": float(len(relevant))}
        logger.info("fold-in %s: %.4f vs refit %.4f", name, f, r)
    return out
