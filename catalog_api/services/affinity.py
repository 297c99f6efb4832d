"""A profile's genre affinity, from what it watched (used by search re-ranking and genre rows)."""

from __future__ import annotations

from catalog_api.services.catalog_cache import CatalogSnapshot
from catalog_api.services.events import LatestPosition


def genre_affinity(positions: list[LatestPosition], snapshot: CatalogSnapshot) -> dict[str, float]:
    """Share of the profile's watching per genre, weighted by progress; sums to 1 (empty if no history)."""
    weights: dict[str, float] = {}
    for position in positions:
        title = snapshot.resolve(position.title_id)
        if title is None or not title.genres:
            continue
        share = max(position.progress, 0.1) / len(title.genres)
        for genre in title.genres:
            weights[genre] = weights.get(genre, 0.0) + share
    total = sum(weights.values())
    return {genre: weight / total for genre, weight in sorted(weights.items(), key=lambda kv: -kv[1])} if total else {}
