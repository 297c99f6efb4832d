"""The lake: validated, atomic parquet tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from core.errors import NotFoundError, SchemaError
from core.lake import Lake, to_arrow
from core.tables import TABLES, WATCH_EVENTS


def _events(ids: list[str], profile: str = "p1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ids,
            "profile_id": profile,
            "title_id": [f"t{i}" for i in range(len(ids))],
            "ts": pd.date_range("2024-01-01", periods=len(ids), freq="h", tz="UTC"),
            "position_s": 10,
            "duration_s": 100,
        }
    )


def test_round_trip_fills_optional_columns_with_nulls(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.write("watch_events", _events(["e1", "e2"])) == 2
    back = lake.read("watch_events")
    assert list(back.columns) == WATCH_EVENTS.schema.names
    assert back["event_id"].tolist() == ["e1", "e2"]
    assert back["rating"].isna().all() and back["device"].isna().all()
    assert str(back["ts"].dt.tz) == "UTC"


def test_naive_timestamps_are_read_as_utc(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    frame = _events(["e1"])
    frame["ts"] = pd.Timestamp("2024-05-01 12:00")
    lake.write("watch_events", frame)
    assert lake.read("watch_events")["ts"].iloc[0] == pd.Timestamp("2024-05-01 12:00", tz="UTC")


def test_append_adds_a_part_and_overwrite_replaces(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(["e1"]))
    lake.write("watch_events", _events(["e2", "e3"]), mode="append")
    assert len(lake.parts("watch_events")) == 2
    assert sorted(lake.read("watch_events")["event_id"]) == ["e1", "e2", "e3"]
    lake.write("watch_events", _events(["e9"]))
    assert lake.read("watch_events")["event_id"].tolist() == ["e9"]
    assert len(lake.parts("watch_events")) == 1
    lake.vacuum("watch_events", retention_hours=0)
    parquet_files = list(lake.table_dir("watch_events").glob("*.parquet"))
    assert len(parquet_files) == 1  # replaced files leave the disk at the vacuum


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["profile_id"]), "missing required column"),
        (lambda f: f.assign(extra=1), "unknown column"),
        (lambda f: f.assign(event_id=["e1", "e1"]), "duplicate primary key"),
        (lambda f: f.assign(title_id=[None, "t"]), "null value"),
        (lambda f: f.assign(position_s=["a", "b"]), "position_s"),
    ],
)
def test_invalid_writes_raise_and_leave_the_table_intact(tmp_path: Path, change, message: str) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(["k1"]))
    with pytest.raises(SchemaError) as caught:
        lake.write("watch_events", change(_events(["e1", "e2"])))
    assert message in str(caught.value)
    assert lake.read("watch_events")["event_id"].tolist() == ["k1"]


def test_missing_and_unknown_tables(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(NotFoundError) as caught:
        lake.read("watch_events")
    assert "marquee data generate" in str(caught.value)
    empty = lake.read_or_empty("watch_events", ["event_id", "ts"])
    assert list(empty.columns) == ["event_id", "ts"] and empty.empty
    with pytest.raises(NotFoundError) as unknown:
        lake.write("movies", _events(["e1"]))
    assert "watch_events" in str(unknown.value)


def test_summary_counts_distinct_and_time_range(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(["e1", "e2", "e3"]))
    lake.write("watch_events", _events(["e4"], profile="p2"), mode="append")
    summary = lake.summary("watch_events")
    assert (summary.rows, summary.parts) == (4, 2)
    assert summary.distinct == {"profile_id": 2, "title_id": 3}
    assert summary.min_time == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert summary.max_time == pd.Timestamp("2024-01-01 02:00", tz="UTC")
    assert [s.name for s in lake.describe()] == ["watch_events"]


def test_delete_rows(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(["e1", "e2"]))
    lake.write("watch_events", _events(["e3"], profile="p2"), mode="append")
    assert lake.delete_rows("watch_events", "profile_id", {"p2"}) == 1
    assert sorted(lake.read("watch_events")["event_id"]) == ["e1", "e2"]
    assert lake.delete_rows("watch_events", "profile_id", {"nobody"}) == 0


def test_empty_tables_and_list_columns(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.write("episodes", TABLES["episodes"].schema.empty_table()) == 0
    assert lake.exists("episodes") and lake.read("episodes").empty
    titles = pd.DataFrame(
        {"title_id": ["a"], "type": ["movie"], "title": ["A"], "maturity_level": [3], "genres": [["Drama", "War"]]}
    )
    lake.write("titles", titles)
    assert list(lake.read("titles")["genres"].iloc[0]) == ["Drama", "War"]


def test_to_arrow_casts_to_the_exact_schema() -> None:
    table = to_arrow(WATCH_EVENTS, _events(["e1"]))
    assert table.schema == WATCH_EVENTS.schema
    assert table.column("position_s").type == pa.int32()


def test_insert_new_writes_only_keys_not_stored_yet(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(["e1", "e2"]), mode="insert_new")
    written = lake.write("watch_events", _events(["e2", "e3"]), mode="insert_new")
    assert written == 1
    again = lake.write("watch_events", _events(["e1", "e3"]), mode="insert_new")
    assert again == 0
    assert sorted(lake.read("watch_events")["event_id"]) == ["e1", "e2", "e3"]
