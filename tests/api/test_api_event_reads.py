"""Reads of the event table that run all the time, right on both databases and not growing with a history.

Every home page and search runs ``latest_positions``; without the (profile, title, seq)
index (migration 0004) its cost grew with each heartbeat the profile ever sent. The
online push reads ``EventFeed.after`` twice a second; it read every earlier event of the
touched profiles, where only those the lake does not hold yet are needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from catalog_api.db.engine import make_engine, make_session_factory, migrate
from catalog_api.db.tables import AccountRow, ExportStateRow, ProfileRow, WatchEventRow
from catalog_api.event_feed import EventFeed
from catalog_api.export import EXPORT_NAME
from catalog_api.services.events import _LATEST_POSITIONS, latest_positions

from .backends import BACKENDS, pg_schema

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
        migrate(made)
        yield made
        made.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    with pg_schema(url, prefix="marquee_latest") as schema:
        made = make_engine(url, schema=schema)
        migrate(made)
        yield made
        made.dispose()


def _fill(engine: Engine) -> None:
    """Two profiles; profile p1 sends 40 heartbeats over 4 titles, p2 one heartbeat of t0."""
    with make_session_factory(engine).begin() as session:
        session.add(
            AccountRow(account_id="a1", email="a@example.com", password_hash="x", country="US", created_at=START)
        )
        for profile_id in ("p1", "p2"):
            session.add(
                ProfileRow(
                    profile_id=profile_id,
                    account_id="a1",
                    name=profile_id,
                    maturity_level=4,
                    country="US",
                    created_at=START,
                )
            )
        session.flush()
        for i in range(40):
            session.add(
                WatchEventRow(
                    event_id=f"e{i}",
                    profile_id="p1",
                    title_id=f"t{i % 4}",
                    ts=START + timedelta(minutes=i),
                    position_s=10 * i,
                    duration_s=1_000,
                    device="web",
                    country="US",
                )
            )
        session.add(
            WatchEventRow(
                event_id="other",
                profile_id="p2",
                title_id="t0",
                ts=START + timedelta(hours=5),
                position_s=999,
                duration_s=1_000,
                device="web",
                country="US",
            )
        )


def test_latest_position_per_title_most_recent_first(engine: Engine) -> None:
    _fill(engine)
    with engine.connect() as connection:
        positions = latest_positions(connection, "p1")
    assert [p.title_id for p in positions] == ["t3", "t2", "t1", "t0"]  # the last heartbeats were 39, 38, 37, 36
    assert [p.position_s for p in positions] == [390, 380, 370, 360]  # p2's later t0 is not p1's
    assert positions[0].ts == START + timedelta(minutes=39)
    indexes = {index["name"] for index in inspect(engine).get_indexes("watch_events")}
    assert "ix_watch_events_profile_title_seq" in indexes


def test_postgresql_builds_the_latest_position_index_beside_writes(postgres_url: str) -> None:
    """Migration 0004 on PostgreSQL: CREATE INDEX CONCURRENTLY, so posts are not blocked while it builds."""
    from sqlalchemy import event

    with pg_schema(postgres_url, prefix="marquee_concurrent") as schema:
        made = make_engine(postgres_url, schema=schema)
        statements: list[str] = []
        event.listen(made, "before_cursor_execute", lambda *args: statements.append(str(args[2])))
        try:
            migrate(made)
            indexes = {index["name"] for index in inspect(made).get_indexes("watch_events")}
        finally:
            made.dispose()
    built = [s for s in statements if "ix_watch_events_profile_title_seq" in s]
    assert built and all("CONCURRENTLY" in s for s in built), built
    assert "ix_watch_events_profile_title_seq" in indexes and "ix_watch_events_profile_id" not in indexes


def test_sqlite_reads_the_latest_positions_in_index_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    migrate(engine)
    _fill(engine)
    compiled = _LATEST_POSITIONS.compile(engine)
    values = compiled.construct_params({"profile_id": "p1", "limit": 200})
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(values[name] for name in compiled.positiontup or ())
        )
        plan = " | ".join(str(row[-1]) for row in rows)
    engine.dispose()
    assert "ix_watch_events_profile_title_seq" in plan, plan
    assert "TEMP B-TREE FOR GROUP BY" not in plan, plan  # no sort of every event the profile ever sent


def test_feed_sends_new_events_and_only_the_earlier_ones_the_lake_lacks(engine: Engine) -> None:
    _fill(engine)  # p1's events are seq 1-40 (in order), p2's seq 41
    sessions = make_session_factory(engine)
    feed = EventFeed(sessions)
    new, earlier, mark = feed.after(38)
    assert mark == 41 and new["event_id"].tolist() == ["e38", "e39", "other"]
    assert sorted(earlier["event_id"]) == sorted(f"e{i}" for i in range(38))  # nothing exported: all of p1's, not p2's
    assert str(new["ts"].dt.tz) == "UTC" and new["ts"].iloc[0] == START + timedelta(minutes=38)
    with sessions.begin() as session:
        session.add(ExportStateRow(name=EXPORT_NAME, high_water=30))
    _, earlier, _ = feed.after(38)
    assert sorted(earlier["event_id"]) == sorted(f"e{i}" for i in range(30, 38))  # 1-30 are in the lake
    new, earlier, mark = feed.after(41)
    assert (len(new), len(earlier), mark) == (0, 0, 41)  # nothing new: nothing to push
