"""Prefetch hints of a home page: signed first-segment URLs of the titles most likely played next."""

from __future__ import annotations

from catalog_api.playback.service import Viewer
from catalog_api.schemas.home import PrefetchHint
from catalog_api.services.catalog_cache import CatalogSnapshot
from catalog_api.services.home_json import PageRow
from catalog_api.services.profile_context import ProfileContext
from catalog_api.state import AppState
from core.errors import MarqueeError


def prefetch_hints(
    state: AppState, snapshot: CatalogSnapshot, rows: list[PageRow], profile: ProfileContext, expiry: int
) -> list[PrefetchHint]:
    """First segments of the titles the profile is most likely to play: what it is watching, then top picks.

    Signed with the ``expiry`` the page's cache entry records, so a cached page's URLs are the ones it says.
    """
    likely = (row for row in rows if row.key in ("continue_watching", "top_picks"))
    ordered = [play_id for row in likely for play_id in row.play_ids or row.title_ids]
    viewer = Viewer(profile.profile_id, profile.maturity_level, profile.country, profile.language, profile.plan)
    hints = []
    for title_id in ordered[: state.options.prefetch_titles]:
        try:
            quality, urls = state.playback.prefetch_urls(snapshot, title_id, viewer, expires=expiry)
        except MarqueeError:
            continue
        hints.append(PrefetchHint(title_id=title_id, quality=quality, urls=urls))
    return hints
