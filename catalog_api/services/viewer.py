"""The viewer context sent with every model-server request, filled from the API's own database.

The API owns viewer state (profiles, watch history, onboarding likes); the model
server keeps no copy of it (``serving.contract.ViewerContext``). So a profile
created a second ago, or a watch posted a second ago, shapes the very next call:
nothing waits for the lake export. Completion is decided here with
``core.rules`` and sent as a flag; the model server never re-derives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from catalog_api.services.catalog_cache import CatalogSnapshot
from catalog_api.services.events import LatestPosition
from catalog_api.services.profile_context import ProfileContext
from core import rules
from serving.contract import MAX_HISTORY, ViewerContext


def viewer_context(profile: ProfileContext, positions: Sequence[LatestPosition]) -> ViewerContext:
    """The context of ``profile`` given its latest positions (most recent first, one per played id).

    History is sent oldest first and capped at ``MAX_HISTORY`` (the newest are kept).
    Played ids are sent as played (an episode id stays an episode id: models learn
    from what was played); onboarding likes are the catalog titles themselves.
    """
    recent = positions[:MAX_HISTORY]
    # Validated in one call from plain values: a ``WatchedTitle(...)`` per watch cost a Python-level
    # ``__init__`` each, a tenth of a cold page's model-call CPU; the checks are the same.
    return ViewerContext.model_validate(
        {
            "profile_id": profile.profile_id,
            "history": [
                {
                    "title_id": p.title_id,
                    "ts": p.ts,
                    "progress": round(p.progress, 4),
                    "completed": rules.is_completed(p.progress),
                }
                for p in reversed(recent)
            ],
            "maturity_level": rules.viewer_level(profile.maturity_level, profile.is_kids),
            "kids": profile.is_kids,
            "country": profile.country or None,
            "language": profile.language or None,
        }
    )


@dataclass(frozen=True)
class WatchedTitles:
    """The catalog titles (episodes → series) a profile has played, as the page's rows use them."""

    #: Completed a watch of (``core.rules.is_completed``): never shown again on a page. A series
    #: whose episode was completed still reaches Continue Watching (its next episode), which is
    #: filled before every other row.
    completed: frozenset[str]
    #: Played at all, completed, in progress or only sampled: never proposed as a pick (Top Picks,
    #: Because You Watched). What is worth resuming is in Continue Watching; a title sampled for a
    #: few seconds (below ``core.rules.STARTED_SHARE``) was tried and left, and a series' other
    #: episodes must not bring it back to the head of Top Picks.
    played: frozenset[str]


def watched_titles(positions: Sequence[LatestPosition], snapshot: CatalogSnapshot) -> WatchedTitles:
    """The completed and the played catalog titles of ``positions``, in one pass."""
    completed: set[str] = set()
    played: set[str] = set()
    for position in positions:
        title = snapshot.resolve(position.title_id)
        if title is None:
            continue
        played.add(title.title_id)
        if rules.is_completed(position.progress):
            completed.add(title.title_id)
    return WatchedTitles(frozenset(completed), frozenset(played))
