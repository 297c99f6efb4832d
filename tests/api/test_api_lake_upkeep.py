"""The API and the lake's tables: the exporter compacts on schedule; popularity reads only the increment."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from catalog_api.options import ApiOptions
from core.lake import Lake

from .support import make_profile, signup_and_login, watch


def _lake_events(profiles: list[str], title_id: str = "m_space") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"lake-{p}" for p in profiles],
            "profile_id": profiles,
            "title_id": title_id,
            "ts": pd.Timestamp("2024-03-01", tz="UTC"),
            "position_s": 900,
            "duration_s": 1000,
        }
    )


def test_popularity_adds_the_lakes_increment_and_rereads_after_an_erasure(
    make_client: Callable[..., TestClient], lake: Lake
) -> None:
    lake.write("watch_events", _lake_events(["p0", "p1", "p2"]), mode="append")
    state = make_client().app.state.marquee  # type: ignore[attr-defined]
    assert state.popularity.refresh().plays["m_space"] == 3
    lake.write("watch_events", _lake_events(["p3", "p4"]), mode="append")
    lake.compact("watch_events")
    assert state.popularity.refresh().plays["m_space"] == 5  # the increment added once, nothing twice
    lake.delete_rows("watch_events", "profile_id", {"p0"})
    assert state.popularity.refresh().plays["m_space"] == 4  # a deletion makes it read the table again


def test_popularity_holds_one_row_per_profile_and_title_not_every_event(
    make_client: Callable[..., TestClient], lake: Lake
) -> None:
    """A viewer's many events of one title (heartbeats, re-watches) are one pair, held and counted once."""
    heartbeats = pd.concat([_lake_events(["p0", "p1"]).assign(event_id=[f"hb{i}-0", f"hb{i}-1"]) for i in range(30)])
    heartbeats["ts"] = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(range(60), unit="s")
    lake.write("watch_events", heartbeats, mode="append")
    state = make_client().app.state.marquee  # type: ignore[attr-defined]
    assert state.popularity.refresh().plays["m_space"] == 2
    lake.write("watch_events", _lake_events(["p1", "p2"]).assign(event_id=["late-1", "late-2"]), mode="append")
    table = state.popularity.refresh()
    assert table.plays["m_space"] == 3  # p1's new event is the same pair; p2 is new
    held = state.popularity._lake_rows
    assert held.num_rows == 3 and sorted(held.column("profile_id").to_pylist()) == ["p0", "p1", "p2"]


def test_the_exporter_compacts_the_lake_on_its_schedule(make_client: Callable[..., TestClient], lake: Lake) -> None:
    client = make_client(options=ApiOptions(row_size=6, export_interval_s=0.1, compact_interval_s=0.5))
    headers = signup_and_login(client, "upkeep@example.com")
    profile = make_profile(client, headers, "P")["profile_id"]
    for i in range(5):
        assert watch(client, headers, profile, "m_space", 0.1 * (i + 1), event_id=f"up-{i}").status_code == 201
        time.sleep(0.15)  # each lands in an export (and a file) of its own
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        exported = lake.read_or_empty("watch_events", ["event_id"])
        if len(exported) == 5 and len(lake.parts("watch_events")) == 1:
            break
        time.sleep(0.2)
    assert sorted(lake.read("watch_events")["event_id"]) == [f"up-{i}" for i in range(5)]
    assert len(lake.parts("watch_events")) == 1
    operations = [commit["operation"] for commit in DeltaTable(lake.table_uri("watch_events")).history()]
    assert "OPTIMIZE" in operations and operations.count("WRITE") >= 2  # several exports, then a compaction


def test_popularity_reads_from_the_database_only_what_the_lake_lacks(
    make_client: Callable[..., TestClient], lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exported events are counted from the lake once; the database adds only the rows above the export mark."""
    from catalog_api.export import export_events_to_lake

    client = make_client(options=ApiOptions(row_size=6, export_interval_s=0))
    state = client.app.state.marquee  # type: ignore[attr-defined]
    headers = signup_and_login(client, "popular@example.com")
    profiles = [make_profile(client, headers, f"P{i}")["profile_id"] for i in range(4)]
    for i, profile in enumerate(profiles[:3]):
        assert watch(client, headers, profile, "m_space", 0.95, event_id=f"pop-{i}").status_code == 201
    with state.sessions() as session:
        assert export_events_to_lake(session, lake) == 3
        session.commit()
    assert watch(client, headers, profiles[3], "m_space", 0.95, event_id="pop-3").status_code == 201
    rows_read: list[int] = []
    original = state.popularity._lake_events

    def lake_events() -> pd.DataFrame:
        frame = original()
        rows_read.append(len(frame))
        return frame

    monkeypatch.setattr(state.popularity, "_lake_events", lake_events)
    statements: list[str] = []
    engine = state.engine
    from sqlalchemy import event as sa_event

    def remember(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", remember)
    try:
        assert state.popularity.refresh().plays["m_space"] == 4  # three from the lake, one not exported yet
    finally:
        sa_event.remove(engine, "before_cursor_execute", remember)
    assert rows_read == [3]
    popularity_reads = [
        s for s in statements if s.startswith("SELECT watch_events.profile_id, watch_events.title_id, watch_events.ts ")
    ]
    assert popularity_reads and all("WHERE watch_events.seq >" in s for s in popularity_reads), popularity_reads


def _one_watch_without_exports(
    make_client: Callable[..., TestClient], name: str
) -> tuple[TestClient, dict[str, str], str]:
    """A client whose exporter never runs by itself, and a profile with one watch (event id ``{name}-0``)."""
    client = make_client(options=ApiOptions(row_size=6, export_interval_s=0))
    headers = signup_and_login(client, f"{name}@example.com")
    profile = make_profile(client, headers, "P")["profile_id"]
    assert watch(client, headers, profile, "m_space", 0.5, event_id=f"{name}-0").status_code == 201
    return client, headers, profile


def test_an_export_takes_what_was_stored_when_it_began_in_one_commit(
    make_client: Callable[..., TestClient], lake: Lake
) -> None:
    """Events stored while an export writes wait for the next export: it does not chase the tail.

    Under steady traffic the exporter used to loop until no new row was left, committing a few
    rows every few seconds (538 commits in a 30-minute soak instead of 30).
    """
    from catalog_api.export import export_events_to_lake

    client, headers, profile = _one_watch_without_exports(make_client, "tail")
    state = client.app.state.marquee  # type: ignore[attr-defined]
    with state.sessions() as session:
        assert export_events_to_lake(session, lake) == 1
        session.commit()
    for i in (1, 2, 3):
        assert watch(client, headers, profile, "m_space", 0.5, event_id=f"tail-{i}").status_code == 201

    class ArrivingWhileWriting(Lake):
        """The real lake; each write lets one more event in through the API first (the traffic)."""

        arrived = 0

        def write(self, name: str, data: object, mode: str = "overwrite") -> int:  # type: ignore[override]
            if ArrivingWhileWriting.arrived < 3:  # bounded, so a regression fails instead of looping for ever
                ArrivingWhileWriting.arrived += 1
                late = f"late-{ArrivingWhileWriting.arrived}"
                assert watch(client, headers, profile, "m_space", 0.5, event_id=late).status_code == 201
            return lake.write(name, data, mode)  # type: ignore[arg-type]

    before = lake.version("watch_events")
    assert before is not None
    with state.sessions() as session:
        assert export_events_to_lake(session, ArrivingWhileWriting(lake.root)) == 3
        session.commit()
    assert lake.version("watch_events") == before + 1  # one commit
    assert sorted(lake.read("watch_events")["event_id"]) == ["tail-0", "tail-1", "tail-2", "tail-3"]
    with state.sessions() as session:
        assert export_events_to_lake(session, lake) == 1  # the late one, next time (one write: one arrival)
        session.commit()


def test_events_posted_during_the_first_export_are_not_held_by_it(
    make_client: Callable[..., TestClient], lake: Lake
) -> None:
    """The first export creates its high-water mark; that write must not hold the database through the lake write.

    On SQLite an insert in the export's transaction kept the one write lock until the first
    batch was in the lake, so an event posted meanwhile waited (a 503 once the wait ran out).
    """
    from catalog_api.db.tables import ExportStateRow
    from catalog_api.export import export_events_to_lake

    client, headers, profile = _one_watch_without_exports(make_client, "first")
    state = client.app.state.marquee  # type: ignore[attr-defined]
    with state.sessions() as session:
        assert session.get(ExportStateRow, "watch_events") is None, "no export has run yet"
    posted: list[tuple[int, float]] = []

    class PostingWhileWriting(Lake):
        """The real lake; its first write posts one more event through the API first."""

        def write(self, name: str, data: object, mode: str = "overwrite") -> int:  # type: ignore[override]
            if not posted:
                started = time.perf_counter()
                status = watch(client, headers, profile, "m_space", 0.5, event_id="first-1").status_code
                posted.append((status, time.perf_counter() - started))
            return lake.write(name, data, mode)  # type: ignore[arg-type]

    with state.sessions() as session:
        assert export_events_to_lake(session, PostingWhileWriting(lake.root)) == 1
        session.commit()
    ((status, seconds),) = posted
    assert status == 201 and seconds < 1.0, posted
    with state.sessions() as session:
        assert export_events_to_lake(session, lake) == 1  # the event posted meanwhile, exported next time
        session.commit()
    assert sorted(lake.read("watch_events")["event_id"]) == ["first-0", "first-1"]


def test_a_second_exporter_creating_the_same_mark_goes_on_with_the_first_ones(
    make_client: Callable[..., TestClient],
) -> None:
    """Two replicas' first exports both insert the mark: the loser's insert fails on the key and is dropped."""
    from catalog_api.db.tables import ExportStateRow
    from catalog_api.export import create_mark

    state = make_client().app.state.marquee  # type: ignore[attr-defined]
    with state.sessions() as first:
        create_mark(first, "race")
        first.get(ExportStateRow, "race").high_water = 7  # type: ignore[union-attr]
        first.commit()
    with state.sessions() as second:
        create_mark(second, "race")  # the row exists: no error, nothing changed
        assert second.get(ExportStateRow, "race").high_water == 7  # type: ignore[union-attr]
