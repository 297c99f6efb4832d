"""Players' quality-of-experience reports: idempotent appends and the sessions they describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from catalog_api.db.tables import PlaybackReportRow, ProfileRow
from catalog_api.schemas.playback_sessions import PlaybackReportCreate, PlaybackSession
from catalog_api.services.catalog_cache import CatalogSnapshot
from core.errors import NotFoundError
from core.qoe import latest_reports, rebuffer_ratio


def record_report(
    session: Session, profile: ProfileRow, report: PlaybackReportCreate, snapshot: CatalogSnapshot
) -> bool:
    """Store one report; True if new, False if this (session, report number) was stored before.

    Raises:
        NotFoundError: the title or episode is not in the catalog, or the session id is another profile's.
    """
    return insert_report(session, report_row(session, profile, report, snapshot)) is not None


def report_row(
    session: Session, profile: ProfileRow, report: PlaybackReportCreate, snapshot: CatalogSnapshot
) -> dict[str, Any]:
    """The stored row of an accepted report (without ``seq``, which the insert assigns).

    A session belongs to the profile that started it: a report naming another
    profile's session id is refused as unknown rather than mixed into it.

    Raises:
        NotFoundError: the title or episode is not in the catalog, or the session id is another profile's.
    """
    if snapshot.resolve(report.title_id) is None:
        raise NotFoundError(f"no title or episode {report.title_id!r} in the catalog")
    owner = session.execute(
        select(PlaybackReportRow.profile_id).where(PlaybackReportRow.session_id == report.session_id).limit(1)
    ).scalar_one_or_none()
    if owner is not None and owner != profile.profile_id:
        raise NotFoundError(f"no playback session {report.session_id!r} for this profile")
    return {
        **report.model_dump(),
        "profile_id": profile.profile_id,
        "country": profile.country,
        "ts": datetime.now(UTC),
    }


def insert_report(session: Session, values: dict[str, Any]) -> int | None:
    """Insert ``report_row``'s values unless stored; the new row's ``seq``, or None for a retry (not committed)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(PlaybackReportRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["session_id", "report_seq"])
        .returning(PlaybackReportRow.seq)
    )
    row = session.execute(statement).first()
    return None if row is None else int(row.seq)


def recent_sessions(session: Session, profile_id: str, limit: int) -> list[PlaybackSession]:
    """The profile's latest ``limit`` sessions, each as its latest report describes it."""
    recent = (
        select(PlaybackReportRow.session_id, func.max(PlaybackReportRow.seq).label("last"))
        .where(PlaybackReportRow.profile_id == profile_id)
        .group_by(PlaybackReportRow.session_id)
        .order_by(func.max(PlaybackReportRow.seq).desc())
        .limit(limit)
        .subquery()
    )
    rows = session.scalars(
        select(PlaybackReportRow).where(PlaybackReportRow.session_id.in_(select(recent.c.session_id)))
    ).all()
    if not rows:
        return []
    frame = pd.DataFrame([{c.name: getattr(r, c.key) for c in PlaybackReportRow.__table__.columns} for r in rows])
    started = frame.groupby("session_id")["ts"].min()
    latest = latest_reports(frame).sort_values("seq", ascending=False)
    return [
        PlaybackSession(
            session_id=row.session_id,
            title_id=row.title_id,
            format=row.format,
            device=row.device,
            edge=row.edge,
            started=started[row.session_id],
            updated=row.ts,
            startup_ms=None if pd.isna(row.startup_ms) else int(row.startup_ms),
            played_s=float(row.played_s),
            rebuffer_count=int(row.rebuffer_count),
            rebuffer_s=float(row.rebuffer_s),
            rebuffer_ratio=round(rebuffer_ratio(float(row.rebuffer_s), float(row.played_s)), 6),
            bitrate_switches=int(row.bitrate_switches),
            avg_bitrate_kbps=int(row.avg_bitrate_kbps),
            fatal_error=None if pd.isna(row.fatal_error) else row.fatal_error,
            ended=bool(row.ended),
        )
        for row in latest.itertuples(index=False)
    ]
