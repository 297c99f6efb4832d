"""Push new watch events: update the online features of the profiles and titles they touch.

Between two materializations the app keeps sending watch events. This module
recomputes, for just the touched profiles and catalog titles, the same features
the pipelines compute (same code, :mod:`features.pipelines`), from their lake
history plus the new events, and pushes one row per entity to the online store
through the views' push sources. The offline tables catch up at the next
``materialize``, which rebuilds them from the lake (the API exports events there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import InvalidInputError, NotFoundError
from core.lake import Lake, to_arrow
from core.periodic import Periodic
from core.tables import WATCH_EVENTS
from core.timestamps import utc_series
from features.pipelines import PipelineOptions, read_manifest
from features.pipelines.plays import plays_from_events
from features.pipelines.profile import genre_affinity, profile_activity
from features.pipelines.title import title_popularity
from features.store import bump_online_version, online_store_errors

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = ["event_id", "profile_id", "title_id", "ts", "position_s", "duration_s"]


@dataclass(frozen=True)
class PushReport:
    """What :func:`push_watch_events` pushed: entity counts and the rows' timestamp."""

    events: int
    profiles: int
    titles: int
    as_of: pd.Timestamp


def push_watch_events(
    store: FeatureStore,
    events: pd.DataFrame,
    lake: Lake,
    options: PipelineOptions | None = None,
    *,
    earlier: pd.DataFrame | None = None,
) -> PushReport:
    """Recompute and push online features of every profile and title ``events`` touch.

    Args:
        store: from :func:`features.store.open_store`.
        events: new watch events in the lake's ``watch_events`` shape (``event_id``,
            ``profile_id``, ``title_id``, ``ts``, ``position_s``, ``duration_s``);
            events already in the lake (same ``event_id``) are counted once.
        lake: the lake with the history (titles, episodes, older events).
        options: pipeline knobs; default those of the last materialize.
        earlier: older events of the same profiles that the lake may not hold yet (the API
            database's rows above the lake's export mark). History only: unlike ``events``
            they touch no title, so a profile's old titles are not all recomputed each batch.

    Returns:
        Counts of what was pushed and the rows' ``event_timestamp``: one second
        after the newest event, or the last materialize's ``as_of`` if later (an
        online row never goes back in time).

    Raises:
        SchemaError: ``events`` does not fit the ``watch_events`` schema.
        InvalidInputError: ``events`` is empty.
    """
    if events.empty:
        raise InvalidInputError("no watch events to push; pass at least one row")
    new = to_arrow(WATCH_EVENTS, events).select(_EVENT_COLUMNS).to_pandas()
    older = (
        to_arrow(WATCH_EVENTS, earlier).select(_EVENT_COLUMNS).to_pandas()
        if earlier is not None and len(earlier)
        else new.iloc[:0]
    )
    episodes = lake.read_or_empty("episodes", ["episode_id", "series_id"])
    titles = lake.read_or_empty("titles")
    series = dict(zip(episodes["episode_id"], episodes["series_id"], strict=True))
    touched_profiles = sorted(set(new["profile_id"]))
    touched_titles = sorted({series.get(t, t) for t in new["title_id"]})
    items = set(touched_titles) | {e for e, s in series.items() if s in set(touched_titles)} | set(new["title_id"])
    history = _history(lake, touched_profiles, sorted(items))
    combined = pd.concat([history, older, new], ignore_index=True).drop_duplicates("event_id", keep="last")

    manifest_as_of = None
    try:
        report = read_manifest(Path(store.repo_path))
        manifest_as_of = pd.Timestamp(report.as_of)
        if options is None:
            options = PipelineOptions(
                half_life_days=report.options.get("half_life_days", PipelineOptions.half_life_days),
                top_genres=int(report.options.get("top_genres", PipelineOptions.top_genres)),
                session_gap_s=int(report.options.get("session_gap_s", PipelineOptions.session_gap_s)),
            )
    except NotFoundError:
        logger.info("push: no feature tables built yet; pushing without a materialized window")
    options = options or PipelineOptions()
    newest = utc_series(new["ts"]).max().floor("s") + pd.Timedelta(seconds=1)
    as_of = max(newest, manifest_as_of) if manifest_as_of is not None else newest
    seconds_p = np.full(len(touched_profiles), int(as_of.timestamp()), dtype=np.int64)
    seconds_t = np.full(len(touched_titles), int(as_of.timestamp()), dtype=np.int64)

    plays = plays_from_events(combined, episodes, timedelta(seconds=options.session_gap_s))
    title_genres = {
        str(t): [str(g) for g in (gs if gs is not None else [])]
        for t, gs in zip(titles["title_id"], titles["genres"], strict=True)
    }
    profile_ids = np.asarray(touched_profiles, dtype=object)
    title_ids = np.asarray(touched_titles, dtype=object)
    frames = {
        "profile_activity": profile_activity(plays, title_genres, profile_ids, seconds_p),
        "profile_genre_affinity": genre_affinity(
            plays, title_genres, profile_ids, seconds_p, options.half_life_days, options.top_genres
        ),
        "title_popularity": title_popularity(plays, titles, title_ids, seconds_t),
    }
    _push(store, frames)
    bump_online_version(Path(store.repo_path), titles=[str(t) for t in title_ids])  # readers reload just these
    logger.info(
        "push: %d events → %d profiles, %d titles (as of %s)", len(new), len(touched_profiles), len(title_ids), as_of
    )
    return PushReport(len(new), len(touched_profiles), len(touched_titles), as_of)


def _history(lake: Lake, profiles: list[str], items: list[str]) -> pd.DataFrame:
    """Lake events of the touched profiles or of the touched titles' items.

    Filtered while the lake is scanned: a push batch touches a few profiles and titles, and
    reading the whole history for each batch made the API's memory and CPU grow with the lake.
    """
    if not lake.exists("watch_events"):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _EVENT_COLUMNS})
    where = pc.field("profile_id").isin(pa.array(profiles, pa.string())) | pc.field("title_id").isin(
        pa.array(items, pa.string())
    )
    return lake.read_arrow("watch_events", _EVENT_COLUMNS, where=where).to_pandas()


def _push(store: FeatureStore, frames: dict[str, pd.DataFrame]) -> None:
    from feast.data_source import PushMode

    from features.feast_repo.definitions import PUSH_SOURCES

    with online_store_errors("push features"):
        for view, frame in frames.items():
            if len(frame):
                store.push(PUSH_SOURCES[view], frame, to=PushMode.ONLINE)


class OnlinePushLoop:
    """Pushes accepted watch events to the online store in batches, in a thread of its own.

    ``fetch(mark)`` returns the events stored after ``mark``, older events of the same
    profiles that the lake may not hold yet, and the new mark (the API's
    ``EventFeed.after``); every ``interval_s`` the loop pushes what is new with
    :func:`push_watch_events` and moves the mark only after the push succeeded, so
    a failed push (online store down) is retried with the next batch. Nothing here
    is on an event's request path.

    Args:
        store: the Feast store (SQLite online store by default, Redis by setting).
        lake: the lake with titles, episodes and exported history.
        fetch: ``mark -> (events, earlier, new_mark)``.
        start: the mark to start after (the feed's latest at start-up: older events
            reached the store through ``materialize``).
        interval_s: how long to wait between batches.
    """

    def __init__(
        self,
        store: FeatureStore,
        lake: Lake,
        fetch: Callable[[int], tuple[pd.DataFrame, pd.DataFrame, int]],
        start: int,
        interval_s: float = 0.5,
    ) -> None:
        self._store, self._lake, self._fetch = store, lake, fetch
        self.mark = start
        self.interval_s = interval_s
        self.pushed = 0
        # ``core.periodic``: pushes at once, then every ``interval_s``; a failed push is logged and the
        # next round retries from the same mark (the mark moves only after a push went through).
        self._loop = Periodic(self.push_once, interval_s, name="online-feature-push", first=self.push_once)

    def start(self) -> OnlinePushLoop:
        """Start the background thread."""
        self._loop.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._loop.stop(timeout_s)

    def push_once(self) -> int:
        """Push the events stored since the mark; returns how many new events were in the batch."""
        events, earlier, mark = self._fetch(self.mark)
        if mark == self.mark:
            return 0
        report = push_watch_events(self._store, events, self._lake, earlier=earlier)
        self.mark = mark
        self.pushed += report.events
        return report.events
