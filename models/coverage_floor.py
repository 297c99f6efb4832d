"""A catalog-coverage floor for a set of served lists: the last top-k slots go to titles nobody is shown.

coverage@10 counts the distinct titles in any profile's top 10. A strong model puts the same
few hundred titles in everyone's top 10; the dampening exponents (``models.blend.dampen``, the
ranker's exposure dampening) trade ndcg for coverage across the whole list and, within the
noise band of ndcg@10 they are allowed, often move coverage by less than the gap to the
baseline (mt/full: 0.142 at every allowed exponent against recency-EASE's 0.155).

This rule spends the cheapest positions instead. A title that no profile's top ``k`` holds and
that a profile's own list ranks just below the cut (position ``k`` or a little lower) takes the
last top-``k`` slot of that profile, in place of a title that at least one other profile's top
``k`` still shows; the displaced title moves to the first place below the cut, so it stays in
the profile's list (recall@20 is untouched when the newcomer came from the top 20). Swaps are
made in order of how far below the cut the newcomer stood, one slot per profile per pass,
the last slot first; a profile's first ``k - max_slots`` places are never touched. It stops as
soon as ``target_titles`` distinct titles are shown. Only the lists are read: no held-out
title, no score, so it applies to any model's lists and to the served ones alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Top-k slots a profile may give up at most (the last ones): its first places are the model's.
MAX_SLOTS = 5


@dataclass(frozen=True)
class FloorResult:
    """The filled lists and what the fill did (for the report)."""

    lists: dict[str, list[str]]
    titles_before: int
    titles_after: int
    swaps: int
    profiles_touched: int


def shown_titles(lists: Mapping[str, Sequence[str]], k: int = 10) -> int:
    """Distinct titles in all lists' top ``k`` (coverage@k times the catalog size)."""
    return len({title for ranked in lists.values() for title in ranked[:k]})


def fill_to_coverage(
    lists: Mapping[str, Sequence[str]], target_titles: int, k: int = 10, max_slots: int = MAX_SLOTS
) -> FloorResult:
    """``lists`` (profile → ranked titles, longer than ``k`` where the model allows) with their
    last top-``k`` slots swapped for unshown titles until ``target_titles`` distinct titles are shown.

    Args:
        lists: each profile's ranked list; titles below position ``k`` are the ones that may move up.
        target_titles: distinct titles the top ``k`` lists should show together (a baseline's count).
        k: the cut coverage is counted at.
        max_slots: top-``k`` slots a profile may give up at most (its last ones).

    Returns:
        The new lists (every profile's, unchanged ones copied) and counts of what changed; when the
        lists cannot reach the target (too few unshown titles below the cuts) as close as they get.
    """
    if k <= 0 or max_slots < 0:
        raise ValueError(f"k must be positive and max_slots non-negative, got k={k}, max_slots={max_slots}")
    out = {profile: list(ranked) for profile, ranked in lists.items()}
    shown = Counter(title for ranked in out.values() for title in ranked[:k])
    before = len(shown)
    distinct, swaps = before, 0
    filled: dict[str, set[str]] = {}
    profiles = list(out)
    for depth in range(1, min(max_slots, k) + 1):
        if distinct >= target_titles:
            break
        # (place below the cut, profile order, profile, title): the cheapest newcomers first.
        offers = sorted(
            (place, order, profile, title)
            for order, profile in enumerate(profiles)
            if len(out[profile]) > k
            for place, title in enumerate(out[profile][k:], start=k)
            if shown[title] == 0
        )
        moved_this_pass: set[str] = set()
        for _place, _order, profile, title in offers:
            if distinct >= target_titles:
                break
            if profile in moved_this_pass or shown[title] > 0:
                continue
            ranked = out[profile]
            # The lowest of the last ``depth`` top-k places that holds a model's title shown elsewhere
            # too (giving up a title only this profile shows would lose what the newcomer brings).
            slot = next(
                (
                    s
                    for s in range(min(k, len(ranked)) - 1, k - depth - 1, -1)
                    if ranked[s] not in filled.get(profile, ()) and shown[ranked[s]] >= 2
                ),
                None,
            )
            if slot is None:
                continue
            displaced = ranked[slot]
            rest = [t for t in ranked[k:] if t != title]
            out[profile] = [*ranked[:slot], *ranked[slot + 1 : k], title, displaced, *rest]
            shown[displaced] -= 1
            shown[title] += 1
            distinct += 1
            swaps += 1
            moved_this_pass.add(profile)
            filled.setdefault(profile, set()).add(title)
    return FloorResult(out, before, distinct, swaps, len(filled))
