"""The home page as JSON bytes, assembled from per-title fragments built once per catalog snapshot.

A home page holds about 140 titles. Serialising it through the response model
cost half a millisecond per page (pydantic's serializer over 140 nested models),
a tenth of the page's CPU, for fragments that are the same on every page: a
title's row item depends only on the catalog. So each title's item is
serialised once per snapshot and pages are joined from those bytes. The output
is exactly what ``HomeResponse`` would produce (a test compares the two), and
``HomeResponse`` stays the route's documented schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic_core import to_json

from catalog_api.schemas.home import ExperimentInfo, HomeResponse, PrefetchHint, RowItem
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle

_MEMO_KEY = "home_item_json"
#: The model version recorded for rows chosen by popularity (no model).
POPULARITY_VERSION = "popularity"


def row_item(title: CatalogTitle, episode_id: str | None = None, position_s: int | None = None) -> RowItem:
    """The row item of a title (with the episode and position to resume, on Continue Watching)."""
    return RowItem(
        title_id=title.title_id,
        title=title.title,
        type=title.type,
        genres=list(title.genres),
        maturity_rating=title.maturity_rating,
        release_year=title.release_year,
        episode_id=episode_id,
        position_s=position_s,
    )


def item_fragments(snapshot: CatalogSnapshot) -> dict[str, bytes]:
    """``title_id`` → the JSON of its plain row item, filled lazily and dropped with the snapshot."""
    fragments: dict[str, bytes] = snapshot.memo.setdefault(_MEMO_KEY, {})
    return fragments


def item_json(snapshot: CatalogSnapshot, title: CatalogTitle) -> bytes:
    """The JSON of a title's plain row item (cached on the snapshot)."""
    fragments = item_fragments(snapshot)
    fragment = fragments.get(title.title_id)
    if fragment is None:
        fragment = fragments[title.title_id] = row_item(title).model_dump_json().encode()
    return fragment


@dataclass
class PageRow:
    """A row being served: its key, display title, title ids and their JSON items."""

    key: str
    title: str
    title_ids: list[str] = field(default_factory=list)
    items: list[bytes] = field(default_factory=list)
    #: What a click plays, where it is not the title itself (the episode to resume on Continue Watching).
    play_ids: list[str] = field(default_factory=list)
    #: The model version that chose this row (its exposures record it); popularity rows say so.
    model_version: str = POPULARITY_VERSION

    def to_json(self) -> bytes:
        """The row as ``HomeRow`` JSON."""
        return b'{"key":%s,"title":%s,"items":[%s]}' % (to_json(self.key), to_json(self.title), b",".join(self.items))


@dataclass(frozen=True)
class HomePage:
    """A finished home page: what the route returns and the exposure log records."""

    request_id: str
    rows: Sequence[PageRow]
    source: str
    fallback_reason: str | None
    experiment: ExperimentInfo
    prefetch: list[PrefetchHint]
    notice: str | None = None

    def to_json(self) -> bytes:
        """The page as ``HomeResponse`` JSON."""
        return (
            b'{"request_id":%s,"rows":[%s],"source":%s,"fallback_reason":%s,"notice":%s,"experiment":%s,"prefetch":[%s]}'
        ) % (
            to_json(self.request_id),
            b",".join(row.to_json() for row in self.rows),
            to_json(self.source),
            to_json(self.fallback_reason),
            to_json(self.notice),
            self.experiment.model_dump_json().encode(),
            b",".join(hint.model_dump_json().encode() for hint in self.prefetch),
        )

    def to_model(self) -> HomeResponse:
        """The page as the response model (for in-process callers and tests)."""
        return HomeResponse.model_validate_json(self.to_json())
