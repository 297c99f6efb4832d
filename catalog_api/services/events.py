"""Watch events: idempotent durable writes, history and Continue Watching."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from catalog_api.db.tables import ProfileRow, WatchEventRow
from catalog_api.schemas.events import WatchEventCreate
from catalog_api.services.catalog_cache import CatalogSnapshot
from core import rules
from core.errors import ForbiddenError, NotFoundError


def record_event(session: Session, profile: ProfileRow, event: WatchEventCreate, snapshot: CatalogSnapshot) -> bool:
    """Store one heartbeat; True if new, False if this ``event_id`` was stored before.

    ``INSERT ... ON CONFLICT (event_id) DO NOTHING`` makes a retry a no-op even
    when two retries race; the caller commits before answering, so a 2xx means
    the event is on disk.

    Raises:
        NotFoundError: the title or episode is not in the catalog.
        ForbiddenError: the title is above the profile's maturity level (a kids profile's history
            never holds a title it could not play).
    """
    return insert_event(session, event_row(profile, event, snapshot))


def event_row(profile: ProfileRow, event: WatchEventCreate, snapshot: CatalogSnapshot) -> dict[str, Any]:
    """The stored row of an accepted heartbeat (the values the database and the event stream both get).

    Raises:
        NotFoundError: the title or episode is not in the catalog.
        ForbiddenError: the title is above the profile's maturity level.
    """
    title = snapshot.resolve(event.title_id)
    if title is None:
        raise NotFoundError(f"no title or episode {event.title_id!r} in the catalog; use ids from GET /v1/titles")
    if not rules.level_allows(title.maturity_level, rules.viewer_level(profile.maturity_level, profile.is_kids)):
        raise ForbiddenError(
            f"title {event.title_id!r} is above this profile's maturity level ({profile.maturity_level})"
        )
    return {
        "event_id": event.event_id,
        "profile_id": profile.profile_id,
        "title_id": event.title_id,
        "ts": event.ts.astimezone(UTC) if event.ts and event.ts.tzinfo else (event.ts or datetime.now(UTC)),
        "position_s": event.position_s,
        "duration_s": event.duration_s,
        "device": event.device,
        "country": profile.country,
    }


def insert_event(session: Session, values: dict[str, Any]) -> bool:
    """Insert ``event_row``'s values unless the ``event_id`` is stored; True when inserted (not committed)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(WatchEventRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(WatchEventRow.seq)
    )
    # RETURNING yields a row only when the insert happened (rowcount is not reliable across drivers).
    return session.execute(statement).first() is not None


@dataclass(frozen=True)
class LatestPosition:
    """The latest heartbeat of one title or episode."""

    title_id: str
    position_s: int
    duration_s: int
    ts: datetime

    @property
    def progress(self) -> float:
        """Share watched, in [0, 1]."""
        return rules.progress(self.position_s, self.duration_s)


_LATEST = (
    select(WatchEventRow.title_id, func.max(WatchEventRow.seq).label("seq"))
    .where(WatchEventRow.profile_id == bindparam("profile_id"))
    .group_by(WatchEventRow.title_id)
    .subquery()
)
# Built once: home rows and search read this on every request, and building the statement
# (subquery, join, cache key) cost more than SQLite took to run it.
_LATEST_POSITIONS = (
    select(WatchEventRow.title_id, WatchEventRow.position_s, WatchEventRow.duration_s, WatchEventRow.ts)
    .join(_LATEST, WatchEventRow.seq == _LATEST.c.seq)
    .order_by(WatchEventRow.ts.desc(), WatchEventRow.seq.desc())
    .limit(bindparam("limit"))
)


def latest_positions(session: Session | Connection, profile_id: str, limit: int = 200) -> list[LatestPosition]:
    """The latest heartbeat per title for a profile, most recent first."""
    rows = session.execute(_LATEST_POSITIONS, {"profile_id": profile_id, "limit": limit}).all()
    return [LatestPosition(r.title_id, r.position_s, r.duration_s, _utc(r.ts)) for r in rows]


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ContinueEntry:
    """A Continue Watching entry: resume ``title_id`` (a movie or episode) at ``position_s``."""

    title_id: str
    series_id: str | None
    position_s: int
    duration_s: int
    reason: str


def continue_watching(positions: list[LatestPosition], snapshot: CatalogSnapshot) -> list[ContinueEntry]:
    """Titles in progress, and the next episode after a finished one; one entry per series or movie.

    Only the most recent activity of a series counts: finishing S1E3 yields
    S1E4 (or S2E1), watching S1E4 halfway yields S1E4 at its position.
    """
    entries: list[ContinueEntry] = []
    seen: set[str] = set()
    for position in positions:
        episode = snapshot.episodes.get(position.title_id)
        parent = episode.series_id if episode else position.title_id
        if parent in seen or snapshot.resolve(position.title_id) is None:
            continue
        seen.add(parent)
        if rules.is_in_progress(position.progress):
            entries.append(
                ContinueEntry(
                    position.title_id,
                    episode.series_id if episode else None,
                    position.position_s,
                    position.duration_s,
                    "in_progress",
                )
            )
        elif rules.is_completed(position.progress) and episode is not None:
            following = snapshot.next_episode(episode.episode_id)
            if following is not None:
                entries.append(
                    ContinueEntry(following.episode_id, following.series_id, 0, following.duration_s, "next_episode")
                )
    return entries


_LAST_POSITION = (
    select(WatchEventRow.position_s, WatchEventRow.duration_s)
    .where(WatchEventRow.profile_id == bindparam("profile_id"), WatchEventRow.title_id == bindparam("title_id"))
    .order_by(WatchEventRow.seq.desc())
    .limit(1)
)


def resume_position(session: Session | Connection, profile_id: str, title_id: str) -> int:
    """Where to resume ``title_id``: its latest position unless it was finished (then 0)."""
    row = session.execute(_LAST_POSITION, {"profile_id": profile_id, "title_id": title_id}).first()
    if row is None or rules.is_completed(rules.progress(row.position_s, row.duration_s)) or not row.duration_s:
        return 0
    return int(row.position_s)
