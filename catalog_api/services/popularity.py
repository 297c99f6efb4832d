"""Popularity and trending: the fallback when personalization is unavailable.

Counts come from the lake's ``watch_events`` (datasets, past exports) plus the
API's own events not yet exported; episodes count for their series. Computed at
start-up and refreshed every ``refresh_s`` seconds, never on the request path
of more than one request at a time. The lake is read incrementally: a refresh
reads only the events appended since the previous one (``Lake.read_since``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.db.tables import WatchEventRow
from catalog_api.export import events_exported_through
from catalog_api.quarantine import split_poisoned
from catalog_api.services.catalog_cache import CatalogSnapshot
from core.lake import Lake
from core.rules import popularity_scores

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = ["profile_id", "title_id", "ts"]


@dataclass(frozen=True)
class AudienceRanking:
    """The popularity lists restricted to the titles one audience (maturity level, country) may see."""

    popular: list[str]
    trending: list[str]
    newest: list[str]
    by_genre: dict[str, list[str]]


@dataclass(frozen=True)
class PopularityTable:
    """Titles ranked by all-time plays and by recent (decayed) plays, best first."""

    popular: list[str] = field(default_factory=list)
    trending: list[str] = field(default_factory=list)
    plays: dict[str, float] = field(default_factory=dict)
    by_genre: dict[str, list[str]] = field(default_factory=dict)
    genre_order: list[str] = field(default_factory=list)
    _audiences: dict[tuple[int, str], tuple[CatalogSnapshot, AudienceRanking]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def for_audience(self, snapshot: CatalogSnapshot, maturity_level: int, country: str) -> AudienceRanking:
        """The lists filtered by ``CatalogTitle.visible_to``, computed once per audience and snapshot.

        A home page used to test visibility title by title while filling its fallback and
        genre rows (a few hundred checks a page); audiences are few (four maturity levels
        times the countries served), so the filtered lists are kept with the table.
        """
        key = (maturity_level, country)
        cached = self._audiences.get(key)
        if cached is not None and cached[0] is snapshot:
            return cached[1]

        # The rule asked once per title, then the lists filtered by membership: the lists hold
        # ~46,000 ids (every genre's too), and asking per id cost ~70 ms per audience on a page.
        visible = {t for t, title in snapshot.titles.items() if title.visible_to(*key)}

        def keep(title_ids: list[str]) -> list[str]:
            return [t for t in title_ids if t in visible]

        ranking = AudienceRanking(
            popular=keep(self.popular),
            trending=keep(self.trending),
            newest=keep(snapshot.newest),
            by_genre={genre: keep(titles) for genre, titles in self.by_genre.items()},
        )
        self._audiences[key] = (snapshot, ranking)
        return ranking


def compute_popularity(events: pd.DataFrame, snapshot: CatalogSnapshot) -> PopularityTable:
    """Rank catalog titles from ``events`` (columns ``profile_id``, ``title_id``, ``ts``).

    Plays and trending weights come from ``core.rules.popularity_scores``, the
    computation the model server's fallback uses too (trending is aged on the
    data's own clock, so a dataset that ends years ago and today's events mix). Titles
    without plays follow in newest-first order, so the fallback rows are never
    short on a fresh catalog.
    """
    scores = popularity_scores(events, lambda tid: t.title_id if (t := snapshot.resolve(tid)) else None)
    plays, recent = scores.plays, scores.trending
    newest_rank = {title_id: i for i, title_id in enumerate(snapshot.newest)}
    popular = sorted(snapshot.titles, key=lambda t: (-plays.get(t, 0), newest_rank[t]))
    trending = sorted(snapshot.titles, key=lambda t: (-recent.get(t, 0.0), -plays.get(t, 0), newest_rank[t]))
    by_genre: dict[str, list[str]] = {}
    genre_plays: dict[str, float] = {}
    for title_id in popular:
        for genre in snapshot.titles[title_id].genres:
            by_genre.setdefault(genre, []).append(title_id)
            genre_plays[genre] = genre_plays.get(genre, 0.0) + plays.get(title_id, 0.0)
    genre_order = sorted(by_genre, key=lambda g: (-genre_plays[g], -len(by_genre[g]), g))
    return PopularityTable(popular, trending, dict(plays), by_genre, genre_order)


class PopularityService:
    """Holds the current popularity table and refreshes it in the background when stale."""

    def __init__(
        self,
        lake: Lake,
        sessions: sessionmaker[Session],
        snapshot: Callable[[], CatalogSnapshot],
        refresh_s: float,
    ) -> None:
        self._lake = lake
        self._sessions = sessions
        self._snapshot = snapshot
        self._refresh_s = refresh_s
        self._table = PopularityTable()
        self._computed_at = 0.0
        self._lifetime_s = self._spread(refresh_s)
        self._refreshing = threading.Lock()
        self._lake_rows: pa.Table | None = None
        self._lake_version: int | None = None

    @staticmethod
    def _spread(refresh_s: float) -> float:
        """A lifetime between 80 % and 100 % of ``refresh_s``, drawn anew after each refresh.

        API workers start together; with one fixed period they would all recompute in the
        same second (about a second of CPU each on a large lake) and take every core from
        the requests at once.
        """
        return refresh_s * random.uniform(0.8, 1.0)

    @property
    def table(self) -> PopularityTable:
        """The current table; a stale one triggers one background refresh."""
        if time.monotonic() - self._computed_at > self._lifetime_s and not self._refreshing.locked():
            threading.Thread(target=self.refresh, name="popularity-refresh", daemon=True).start()
        return self._table

    def expire(self, min_age_s: float) -> None:
        """Let the next read refresh the table once it is ``min_age_s`` old (new events arrived).

        Called by the event stream's popularity consumer: trending follows the events
        instead of a fixed period, and ``min_age_s`` keeps a busy stream from
        recomputing on every batch.
        """
        self._lifetime_s = min(self._lifetime_s, min_age_s)

    def refresh(self) -> PopularityTable:
        """Recompute from the lake and the database now."""
        if not self._refreshing.acquire(blocking=False):
            return self._table
        try:
            # The mark first, then the lake: an export in between only adds rows both sources hold
            # (a (profile, title) pair counts once). Only the rows the lake lacks come from the
            # database, so a refresh's memory follows the last minute of events, not all of them.
            with self._sessions() as session:
                exported = events_exported_through(session)
            lake_events = self._lake_events()
            with self._sessions() as session:
                rows = session.execute(
                    select(WatchEventRow.profile_id, WatchEventRow.title_id, WatchEventRow.ts).where(
                        WatchEventRow.seq > exported
                    )
                ).all()
            db_events, _ = split_poisoned(pd.DataFrame(rows, columns=["profile_id", "title_id", "ts"]), "popularity")
            frames = [f for f in (lake_events, db_events) if not f.empty]
            events = pd.concat(frames, ignore_index=True) if frames else db_events
            snapshot = self._snapshot()
            table = compute_popularity(events, snapshot)
            # The audiences pages asked for so far, filtered here in the refresh thread: else the
            # first page of each audience after every refresh paid for its lists on the request path.
            for maturity_level, country in list(self._table._audiences):
                table.for_audience(snapshot, maturity_level, country)
            self._table = table
            self._computed_at = time.monotonic()
            self._lifetime_s = self._spread(self._refresh_s)
            logger.info("popularity refreshed from %d events", len(events))
        except Exception:
            # Popularity is the safety net: keep serving the previous table rather than failing pages.
            logger.exception("popularity refresh failed; keeping the previous table")
            self._computed_at = time.monotonic()
        finally:
            self._refreshing.release()
        return self._table

    def _lake_events(self) -> pd.DataFrame:
        """The lake's watch events, one row per (profile, title) at its latest time; only the increment is read.

        ``core.rules.popularity_scores`` counts a (profile, title) pair once, at its latest
        play, so the pairs give it the same answer as every event (a viewer's heartbeats and
        re-watches are many events, one pair): what is held and converted per refresh follows
        the pairs, not the events. An erasure or a rewrite of the table since the last read
        makes the lake answer with the whole table, which replaces what is held.
        """
        increment = self._lake.read_since("watch_events", self._lake_version, _EVENT_COLUMNS)
        if increment.full or self._lake_rows is None:
            rows = _latest_pairs(increment.rows)
        else:
            rows = _latest_pairs(pa.concat_tables([self._lake_rows, increment.rows]))
        self._lake_rows, self._lake_version = rows, increment.version
        return rows.to_pandas()


def _latest_pairs(events: pa.Table) -> pa.Table:
    """One row per (profile, title): its latest ``ts`` (Arrow's group-by, no Python objects per event)."""
    pairs = events.group_by(["profile_id", "title_id"], use_threads=False).aggregate([("ts", "max")])
    columns = {"profile_id": pairs["profile_id"], "title_id": pairs["title_id"], "ts": pairs["ts_max"]}
    return pa.table(columns).combine_chunks()
