"""Row building: fill a page's rows in the order its layout (data, ``core.rules.LAYOUTS``) gives.

Rules every page obeys, whatever the source:
- every item passes the one visibility rule (``core.rules.may_see``, through
  ``CatalogTitle.visible_to``);
- no title appears twice on a page (rows are filled in layout order, Continue
  Watching first);
- a title the profile completed (``core.rules.is_completed``) appears in no row;
- a title the profile played at all is never a pick (Top Picks, Because You Watched):
  what is worth resuming is in Continue Watching, what was only sampled was left;
- each row remembers the model version that chose it, for its exposures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from catalog_api.services.affinity import genre_affinity
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from catalog_api.services.events import ContinueEntry, LatestPosition, continue_watching
from catalog_api.services.home_json import POPULARITY_VERSION, PageRow, item_fragments, item_json, row_item
from catalog_api.services.home_model import Personalization
from catalog_api.services.popularity import PopularityTable
from core import rules


@dataclass
class PageBuilder:
    """Fills rows in order, enforcing the visibility filter, the no-duplicates and the no-completed rules."""

    snapshot: CatalogSnapshot
    maturity_level: int
    country: str | None
    row_size: int
    #: Catalog titles never shown (completed ones); Continue Watching is exempt (its next episode).
    hidden: frozenset[str] = frozenset()
    #: Catalog titles the profile played at all: the rows of picks (``add(pick=True)``) skip them.
    played: frozenset[str] = frozenset()
    used: set[str] = field(default_factory=set)
    rows: list[PageRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        #: What a row of picks skips, joined once per page.
        self._not_picked = self.hidden | self.played

    def visible(self, title_id: str) -> CatalogTitle | None:
        """The title if the profile may see it here (ids of episodes resolve to their series)."""
        title = self.snapshot.resolve(title_id)
        if title is None or not title.visible_to(self.maturity_level, self.country):
            return None
        return title

    def add(
        self,
        key: str,
        name: str,
        title_ids: Iterable[str],
        *,
        visible: bool = False,
        pick: bool = False,
        model_version: str = POPULARITY_VERSION,
    ) -> PageRow | None:
        """Add a row of the first ``row_size`` visible, unused, not completed titles; empty rows are dropped.

        ``visible=True`` says the ids are catalog titles already filtered for this audience
        (``PopularityTable.for_audience``); ids from the model server are always checked.
        ``pick=True`` marks a row of picks for this viewer: titles it played are left out too.
        """
        limit, used, snapshot = self.row_size, self.used, self.snapshot
        hidden = self._not_picked if pick else self.hidden
        titles, fragments = snapshot.titles, item_fragments(snapshot)
        row = PageRow(key, name, model_version=model_version)
        ids, items = row.title_ids, row.items
        for title_id in title_ids:
            if visible:
                # Catalog ids already filtered for this audience (the keys of ``snapshot.titles``): a page
                # walks a few hundred of these, so nothing is looked up before the id is known to be new.
                if title_id in used or title_id in hidden:
                    continue
                title = titles[title_id]
            else:
                found = self.visible(title_id)
                if found is None or found.title_id in used or found.title_id in hidden:
                    continue
                title = found
            used.add(title.title_id)
            ids.append(title.title_id)
            items.append(fragments.get(title.title_id) or item_json(snapshot, title))
            if len(items) >= limit:
                break
        if not row.items:
            return None
        self.rows.append(row)
        return row

    def add_continue(self, entries: list[ContinueEntry]) -> None:
        """Continue Watching: the series (or movie) with the episode and position to resume."""
        row = PageRow("continue_watching", rules.ROW_NAMES["continue_watching"])
        for entry in entries:
            title = self.visible(entry.title_id)
            if title is None or title.title_id in self.used:
                continue
            self.used.add(title.title_id)
            episode_id = entry.title_id if entry.series_id else None
            row.title_ids.append(title.title_id)
            row.items.append(row_item(title, episode_id, entry.position_s).model_dump_json().encode())
            row.play_ids.append(episode_id or title.title_id)
            if len(row.items) >= self.row_size:
                break
        if row.items:
            self.rows.append(row)


def fill_rows(
    page: PageBuilder,
    popularity: PopularityTable,
    positions: list[LatestPosition],
    seed: str | None,
    result: Personalization,
    layout: str,
    genre_rows: int,
) -> list[PageRow]:
    """The page's rows in the order ``layout`` lists them (``core.rules.layout_rows``)."""
    # The table the page's cache entry records (``PageInputs``), not a fresher one read again.
    snapshot = page.snapshot
    audience = popularity.for_audience(snapshot, page.maturity_level, page.country or "")
    affinity = genre_affinity(positions, snapshot)
    order = {genre: i for i, genre in enumerate(popularity.genre_order)}
    genres = sorted(popularity.genre_order, key=lambda g: (-affinity.get(g, 0.0), order[g]))

    def top_picks() -> None:
        if result.picks is not None:
            ids = (i.title_id for i in result.picks.items)
            page.add(
                "top_picks", rules.ROW_NAMES["top_picks"], ids, pick=True, model_version=result.picks.model_version
            )
        else:
            page.add("top_picks", rules.ROW_NAMES["top_picks"], audience.popular, visible=True, pick=True)

    def because() -> None:
        if seed is None:
            return
        key, name = f"because_you_watched:{seed}", f"Because You Watched {snapshot.titles[seed].title}"
        if result.similar is not None:
            ids = (i.title_id for i in result.similar.items)
            page.add(key, name, ids, pick=True, model_version=result.similar.model_version)
        else:
            # Fallback: the most popular titles sharing the seed's genres.
            seed_genres = set(snapshot.titles[seed].genres)
            ranked = (t for t in audience.popular if not seed_genres.isdisjoint(snapshot.titles[t].genres))
            page.add(key, name, ranked, visible=True, pick=True)

    def trending() -> None:
        page.add("trending", rules.ROW_NAMES["trending"], audience.trending, visible=True)

    def new_releases() -> None:
        page.add("new_releases", rules.ROW_NAMES["new_releases"], audience.newest, visible=True)

    def genre_rows_() -> None:
        added = 0
        for genre in genres:
            if added >= genre_rows:
                break
            row = page.add(f"genre:{genre}", genre, audience.by_genre.get(genre, []), visible=True)
            added += row is not None

    def continue_row() -> None:
        page.add_continue(continue_watching(positions, snapshot))

    builders: dict[str, Callable[[], None]] = {
        "continue_watching": continue_row,
        "top_picks": top_picks,
        "because_you_watched": because,
        "trending": trending,
        "new_releases": new_releases,
        "genres": genre_rows_,
    }
    for kind in rules.layout_rows(layout):
        builders[kind]()
    return page.rows
