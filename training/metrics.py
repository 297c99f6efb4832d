"""Ranking metrics of the ``temporal-user-80-20`` protocol.

All take ranked lists of item ids per user and the held-out item set per user,
so they do not care which model produced the lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Binary-gain NDCG@k; the ideal DCG assumes ``min(k, |relevant|)`` hits at the top."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int = 20) -> float:
    """Hits in the top ``k`` divided by ``min(k, |relevant|)`` (so a perfect list scores 1)."""
    if not relevant:
        return 0.0
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / min(k, len(relevant))


def average_precision_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """AP@k with the ``min(k, |relevant|)`` normaliser (MAP is its mean over users)."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked[:k]):
        if item in relevant:
            hits += 1
            total += hits / (rank + 1)
    return total / min(k, len(relevant))


def coverage_at_k(ranked_lists: Sequence[Sequence[str]], n_items: int, k: int = 10) -> float:
    """Distinct items in all users' top ``k``, divided by the catalog size ``n_items``."""
    if n_items <= 0:
        return 0.0
    distinct = {item for ranked in ranked_lists for item in ranked[:k]}
    return len(distinct) / n_items


def novelty_at_k(
    ranked_lists: Sequence[Sequence[str]], popularity: Mapping[str, int], n_users: int, k: int = 10
) -> float:
    """Mean self-information ``-log2(share of users who watched the item)`` of recommended items."""
    values = [
        -math.log2(max(popularity.get(item, 0), 1) / max(n_users, 1)) for ranked in ranked_lists for item in ranked[:k]
    ]
    return float(np.mean(values)) if values else 0.0


def summarise(
    ranked: Mapping[str, Sequence[str]],
    relevant: Mapping[str, set[str]],
    n_items: int,
    popularity: Mapping[str, int] | None = None,
    n_users: int = 0,
) -> dict[str, float]:
    """The protocol's metrics averaged over the users in ``relevant``.

    Args:
        ranked: user_id → ranked item ids (at least 20 long where the catalog allows).
        relevant: user_id → held-out item ids.
        n_items: number of train items (coverage denominator).
        popularity: item_id → number of train users, for novelty (optional).
        n_users: number of train users, for novelty.
    """
    users = list(relevant)
    lists = [ranked.get(u, []) for u in users]
    out = {
        "ndcg@10": float(np.mean([ndcg_at_k(r, relevant[u], 10) for u, r in zip(users, lists, strict=True)])),
        "recall@20": float(np.mean([recall_at_k(r, relevant[u], 20) for u, r in zip(users, lists, strict=True)])),
        "map@10": float(
            np.mean([average_precision_at_k(r, relevant[u], 10) for u, r in zip(users, lists, strict=True)])
        ),
        "coverage@10": coverage_at_k(lists, n_items, 10),
    }
    if popularity is not None:
        out["novelty@10"] = novelty_at_k(lists, popularity, n_users, 10)
    return out
