"""ORM tables of the API's OLTP database.

The Alembic migrations in ``catalog_api/migrations`` create exactly these
tables; ``tests/test_api_db.py`` checks that the two never drift apart.
List-valued catalog fields are JSON columns so SQLite and PostgreSQL share one
schema; search over them uses the denormalised ``search_text`` column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every API table."""


class AccountRow(Base):
    """A paying account: credentials, country and plan."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    plan: Mapped[str] = mapped_column(String(16), default="standard")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProfileRow(Base):
    """A viewer inside an account."""

    __tablename__ = "profiles"

    profile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("accounts.account_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    language: Mapped[str] = mapped_column(String(16), default="en")
    maturity_level: Mapped[int] = mapped_column(SmallInteger)
    is_kids: Mapped[bool] = mapped_column(Boolean, default=False)
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TitleRow(Base):
    """A movie or a series, copied from the lake's ``titles`` table."""

    __tablename__ = "titles"

    title_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    synopsis: Mapped[str] = mapped_column(Text, default="")
    genres: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    maturity_rating: Mapped[str] = mapped_column(String(16), default="")
    maturity_level: Mapped[int] = mapped_column(SmallInteger)
    release_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    date_added: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cast: Mapped[list[str]] = mapped_column(JSON, default=list)
    director: Mapped[list[str]] = mapped_column(JSON, default=list)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    video_qualities: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    search_text: Mapped[str] = mapped_column(Text, default="")


class EpisodeRow(Base):
    """One episode of a series title."""

    __tablename__ = "episodes"

    episode_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    series_id: Mapped[str] = mapped_column(String(128), index=True)
    season_number: Mapped[int] = mapped_column(SmallInteger)
    episode_number: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[int] = mapped_column(Integer)


class WatchEventRow(Base):
    """A progress heartbeat; the durable record of watching.

    ``seq`` orders events for the lake export's high-water mark; ``event_id``
    (the client's id) is unique so a retried heartbeat is stored once.
    """

    __tablename__ = "watch_events"
    # The latest position per title of a profile is read on every home page and search:
    # (profile, title, seq) gives it in index order (migration 0004 says why).
    __table_args__ = (Index("ix_watch_events_profile_title_seq", "profile_id", "title_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    profile_id: Mapped[str] = mapped_column(String(64), ForeignKey("profiles.profile_id", ondelete="CASCADE"))
    title_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    position_s: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(32), default="unknown")
    country: Mapped[str] = mapped_column(String(2))


class ExportStateRow(Base):
    """High-water marks of exports to the lake (one row per export)."""

    __tablename__ = "export_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    high_water: Mapped[int] = mapped_column(SeqType, default=0)


class QuarantinedEventRow(Base):
    """A stored watch event the export set aside (``catalog_api.quarantine``), and why.

    The event stays in ``watch_events`` (the durable record is never rewritten); the
    export skips it, so one bad row cannot hold every later event back from the lake.
    """

    __tablename__ = "quarantined_events"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevokedTokenRow(Base):
    """A token id revoked by logout or refresh rotation, kept until it would expire anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def row_dict(row: Base) -> dict[str, Any]:
    """The column values of an ORM row, for building public schemas."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class PlaybackReportRow(Base):
    """A player's quality-of-experience report: a session's totals so far (``core.qoe``).

    Append-only, one row per (session, report number), so a retried beacon is a
    no-op and the export to the lake follows ``seq`` like watch events do; the
    latest report of a session is the session (``core.qoe.latest_reports``).
    """

    __tablename__ = "playback_reports"
    __table_args__ = (UniqueConstraint("session_id", "report_seq", name="uq_playback_reports_session_report"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    report_seq: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("profiles.profile_id", ondelete="CASCADE"), index=True
    )
    title_id: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    format: Mapped[str] = mapped_column(String(8))
    device: Mapped[str] = mapped_column(String(32))
    edge: Mapped[str | None] = mapped_column(String(64), nullable=True)
    country: Mapped[str] = mapped_column(String(2))
    startup_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    played_s: Mapped[float] = mapped_column(Float)
    rebuffer_count: Mapped[int] = mapped_column(Integer)
    rebuffer_s: Mapped[float] = mapped_column(Float)
    bitrate_switches: Mapped[int] = mapped_column(Integer)
    avg_bitrate_kbps: Mapped[int] = mapped_column(Integer)
    fatal_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ended: Mapped[bool] = mapped_column(Boolean)
