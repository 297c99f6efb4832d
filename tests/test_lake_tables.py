"""The lake as Delta tables: bounded files, erasure, concurrent writers, increments, migration, other readers."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.errors import ConfigurationError, InvalidInputError
from core.lake import Lake
from core.lake_migrate import migrate_lake
from core.tables import TABLES


def _events(start: int, n: int, profile: str = "p1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(start, start + n)],
            "profile_id": profile,
            "title_id": [f"t{i % 7}" for i in range(start, start + n)],
            "ts": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
            "position_s": 10,
            "duration_s": 100,
        }
    )


def _data_files(lake: Lake, name: str) -> list[Path]:
    return sorted(lake.table_dir(name).glob("*.parquet"))


def _ids(frame: pd.DataFrame | pa.Table, column: str = "event_id") -> list[str]:
    values = frame.column(column).to_pylist() if isinstance(frame, pa.Table) else frame[column].tolist()
    return sorted(str(v) for v in values)


def test_files_per_table_stay_constant_after_appends_and_compaction(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for export in range(20):
        lake.write("watch_events", _events(export * 10, 10), mode="append")
    assert len(lake.parts("watch_events")) == 20  # one file per export
    report = lake.compact("watch_events")
    assert (report.files_before, report.files_after) == (20, 1)
    assert lake.vacuum("watch_events", retention_hours=0).files_deleted == 20
    assert len(_data_files(lake, "watch_events")) == 1
    for export in range(20, 40):
        lake.write("watch_events", _events(export * 10, 10), mode="append")
    lake.compact("watch_events")
    lake.vacuum("watch_events", retention_hours=0)
    assert len(lake.parts("watch_events")) == 1 and len(_data_files(lake, "watch_events")) == 1
    assert _ids(lake.read("watch_events")) == _ids(_events(0, 400))


def test_a_filtered_read_returns_exactly_the_matching_rows_of_every_file(tmp_path: Path) -> None:
    """``where`` is applied during the scan (the online push reads a few profiles' rows this way)."""
    import pyarrow.compute as pc

    lake = Lake(tmp_path)
    for export, profile in enumerate(["p1", "p2", "p3", "p1"]):
        lake.write("watch_events", _events(export * 10, 10, profile), mode="append")
    where = pc.field("profile_id").isin(pa.array(["p3"])) | pc.field("title_id").isin(pa.array(["t0"]))
    got = lake.read_arrow("watch_events", ["event_id", "profile_id", "title_id"], where=where)
    everything = lake.read("watch_events")
    expected = everything[(everything["profile_id"] == "p3") | (everything["title_id"] == "t0")]
    assert _ids(got) == _ids(expected) and 0 < got.num_rows < len(everything)
    assert got.schema.names == ["event_id", "profile_id", "title_id"]


def test_vacuum_keeps_files_younger_than_the_retention(tmp_path: Path) -> None:
    lake = Lake(tmp_path, retention_hours=24)
    for export in range(3):
        lake.write("watch_events", _events(export, 1), mode="append")
    lake.maintain()
    assert len(lake.parts("watch_events")) == 1
    assert len(_data_files(lake, "watch_events")) == 4  # a snapshot of an hour ago may still be read


def test_erasure_removes_a_profiles_rows_from_every_tables_current_snapshot(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("accounts", pd.DataFrame({"account_id": ["a1", "a2"], "country": ["US", "FR"]}))
    lake.write(
        "profiles",
        pd.DataFrame({"profile_id": ["p1", "p2"], "account_id": ["a1", "a2"], "maturity_level": 4, "is_kids": False}),
    )
    lake.write("watch_events", _events(0, 5, "p1"))
    lake.write("watch_events", _events(5, 3, "p2"), mode="append")
    lake.write(
        "playback_reports",
        pd.DataFrame(
            {
                "session_id": ["s1", "s2"],
                "report_seq": [1, 1],
                "profile_id": ["p1", "p2"],
                "title_id": ["t1", "t1"],
                "ts": pd.Timestamp("2024-01-01", tz="UTC"),
                "played_s": 3.0,
            }
        ),
    )
    removed = lake.erase({"account_id": {"a1"}, "profile_id": {"p1"}})
    assert removed == {"accounts": 1, "profiles": 1, "watch_events": 5, "exposures": 0, "playback_reports": 1}
    for name, column in (("accounts", "account_id"), ("profiles", "profile_id"), ("watch_events", "profile_id")):
        assert "p1" not in set(lake.read(name)[column]) and "a1" not in set(lake.read(name)[column])
    assert set(lake.read("playback_reports")["profile_id"]) == {"p2"}
    assert _ids(lake.read("watch_events")) == ["e5", "e6", "e7"]
    assert lake.erase({"profile_id": {"p1"}})["watch_events"] == 0  # idempotent
    lake.vacuum("watch_events", retention_hours=0)
    on_disk = pa.concat_tables([pq.read_table(p) for p in _data_files(lake, "watch_events")])
    assert "p1" not in set(on_disk.column("profile_id").to_pylist())  # gone from disk after the vacuum
    with pytest.raises(InvalidInputError, match="no column"):
        lake.delete_rows("watch_events", "nope", {"x"})


def _write_many(root: str, writer: str, count: int, start_at: float) -> None:
    """Append unique events, and insert overlapping titles with ``insert_new`` (the other writer, in reverse)."""
    lake = Lake(Path(root))
    time.sleep(max(0.0, start_at - time.time()))  # both writers start together, once imported
    order = range(count) if writer == "a" else reversed(range(count))
    for i in order:
        frame = _events(0, 5)
        frame["event_id"] = [f"{writer}-{i}-{j}" for j in range(5)]
        lake.write("watch_events", frame, mode="append")
        titles = [f"t{k}" for k in range(2 * i, 2 * i + 4)]
        lake.write(
            "titles",
            pd.DataFrame({"title_id": titles, "type": "movie", "title": titles, "maturity_level": 2}),
            mode="insert_new",
        )


@pytest.mark.slow
def test_two_writer_processes_at_once_lose_nothing_and_insert_nothing_twice(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 6
    writers = [context.Process(target=_write_many, args=(str(tmp_path), name, 15, start_at)) for name in "ab"]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    lake = Lake(tmp_path)
    ids = _ids(lake.read("watch_events"))
    assert len(ids) == len(set(ids)) == 2 * 15 * 5
    assert lake.version("watch_events") == 29  # one commit per append, none lost
    titles = lake.read("titles")["title_id"].tolist()
    assert sorted(titles) == sorted(f"t{k}" for k in range(2 * 15 + 2))  # each key once


def test_insert_new_skips_stored_keys_including_null_key_parts(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    exposures = pd.DataFrame(
        {
            "request_id": ["r1", "r1"],
            "ts": pd.Timestamp("2024-01-01", tz="UTC"),
            "profile_id": "p1",
            "row_key": "top",
            "position": [0, 1],
            "title_id": "t1",
            "experiment_key": [None, "exp"],
        }
    )
    assert lake.write("exposures", exposures, mode="insert_new") == 2
    assert lake.write("exposures", exposures, mode="insert_new") == 0  # a redelivered batch
    assert len(lake.read("exposures")) == 2


def test_incremental_read_returns_only_new_rows(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    first = lake.read_since("watch_events", None)
    assert first.full and first.rows.num_rows == 0
    lake.write("watch_events", _events(0, 5), mode="append")
    whole = lake.read_since("watch_events", None, ["event_id", "ts"])
    assert whole.full and _ids(whole.rows) == _ids(_events(0, 5))
    assert whole.rows.schema == pa.schema([TABLES["watch_events"].schema.field(c) for c in ("event_id", "ts")])
    lake.write("watch_events", _events(5, 3), mode="append")
    lake.compact("watch_events")  # changes no row: stepped over
    lake.write("watch_events", _events(8, 2), mode="insert_new")
    increment = lake.read_since("watch_events", whole.version, ["event_id"])
    assert not increment.full and _ids(increment.rows) == ["e5", "e6", "e7", "e8", "e9"]
    nothing = lake.read_since("watch_events", increment.version)
    assert not nothing.full and nothing.rows.num_rows == 0 and nothing.version == increment.version
    lake.delete_rows("watch_events", "event_id", {"e0"})
    after_erasure = lake.read_since("watch_events", increment.version, ["event_id"])
    assert after_erasure.full and "e0" not in _ids(after_erasure.rows) and len(after_erasure.rows) == 9


def test_an_increment_whose_files_were_vacuumed_falls_back_to_the_whole_table(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("watch_events", _events(0, 2), mode="append")
    old = lake.read_since("watch_events", None)
    lake.write("watch_events", _events(2, 2), mode="append")
    lake.compact("watch_events")
    lake.vacuum("watch_events", retention_hours=0)  # the appended file is gone; only the compacted one is left
    answer = lake.read_since("watch_events", old.version, ["event_id"])
    assert _ids(answer.rows) == (["e0", "e1", "e2", "e3"] if answer.full else ["e2", "e3"])


def _legacy_lake(root: Path) -> None:
    """A lake in the old layout: parquet parts listed by ``_manifest.json`` (one duplicate event, as it allowed)."""
    for name, parts in {
        "watch_events": [_events(0, 3), _events(3, 2), _events(4, 1)],
        "titles": [pd.DataFrame({"title_id": ["t1"], "type": ["movie"], "title": ["T"], "maturity_level": [2]})],
    }.items():
        folder = root / name
        folder.mkdir(parents=True)
        names = []
        for i, frame in enumerate(parts):
            names.append(f"part-{i:032x}.parquet")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if "ts" in frame:
                table = table.set_column(3, "ts", table.column("ts").cast(pa.timestamp("ms", tz="UTC")))
            pq.write_table(table, folder / names[-1])
        (folder / "_manifest.json").write_text(json.dumps({"parts": names}))
        (folder / ".lock").touch()


def test_migrate_converts_an_old_lake_in_place_and_can_run_again(tmp_path: Path) -> None:
    _legacy_lake(tmp_path)
    lake = Lake(tmp_path)
    with pytest.raises(ConfigurationError, match="marquee lake migrate"):
        lake.read("watch_events")
    with pytest.raises(ConfigurationError, match="marquee lake migrate"):
        lake.write("watch_events", _events(50, 1), mode="append")
    backup = tmp_path.parent / "backup"
    shutil.copytree(tmp_path / "watch_events", backup)
    outcomes = {t.name: (t.outcome, t.rows) for t in migrate_lake(tmp_path, lake)}
    assert outcomes["watch_events"] == ("converted", 6) and outcomes["titles"] == ("converted", 1)
    assert outcomes["episodes"] == ("absent", 0)
    assert _ids(lake.read("watch_events")) == ["e0", "e1", "e2", "e3", "e4", "e4"]
    assert lake.read("titles")["title_id"].tolist() == ["t1"]
    assert not list((tmp_path / "watch_events").glob("part-0000000*.parquet"))
    assert not (tmp_path / "watch_events" / "_manifest.json").exists()
    # A run stopped after the commit, before the clean-up: the parts are back; a second run only removes them.
    for leftover in backup.iterdir():
        shutil.copy(leftover, tmp_path / "watch_events" / leftover.name)
    again = {t.name: t.outcome for t in migrate_lake(tmp_path, lake)}
    assert again["watch_events"] == "cleaned up" and again["titles"] == "already a table"
    assert len(lake.read("watch_events")) == 6  # nothing twice


def test_marquee_lake_migrate_and_compact_commands(tmp_path: Path) -> None:
    from marquee.cli import app

    home = tmp_path / "ws"
    _legacy_lake(home / "lake")
    runner = CliRunner()
    env = {"MARQUEE_HOME": str(home)}
    migrated = runner.invoke(app, ["lake", "migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "watch_events" in migrated.output and "converted (6 rows from 3 parts)" in migrated.output
    lake = Lake(home / "lake")
    lake.write("watch_events", _events(10, 1), mode="append")
    compacted = runner.invoke(app, ["lake", "compact", "--table", "watch_events"], env=env)
    assert compacted.exit_code == 0, compacted.output
    assert "files     2 →   1" in compacted.output
    assert len(lake.parts("watch_events")) == 1


def test_duckdb_reads_the_same_rows_as_the_lake(tmp_path: Path) -> None:
    import duckdb

    lake = Lake(tmp_path)
    lake.write("watch_events", _events(0, 6))
    lake.write("watch_events", _events(6, 4, "p2"), mode="append")
    lake.delete_rows("watch_events", "event_id", {"e1"})
    connection = duckdb.connect()
    rows = connection.execute(
        "SELECT event_id, profile_id, ts FROM read_parquet(?) ORDER BY event_id", [lake.parts("watch_events")]
    ).df()
    expected = lake.read("watch_events", ["event_id", "profile_id", "ts"]).sort_values("event_id")
    assert rows["event_id"].tolist() == expected["event_id"].tolist()
    assert rows["profile_id"].tolist() == expected["profile_id"].tolist()
    assert [pd.Timestamp(t).tz_convert("UTC") for t in rows["ts"]] == expected["ts"].tolist()


@pytest.mark.slow
def test_spark_reads_the_same_rows_as_the_lake(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: Spark cannot start")
    from pyspark.sql import SparkSession

    lake = Lake(tmp_path)
    lake.write("watch_events", _events(0, 6))
    lake.write("watch_events", _events(6, 4, "p2"), mode="append")
    lake.delete_rows("watch_events", "event_id", {"e1"})
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("marquee-lake-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    try:
        rows = spark.read.parquet(*lake.parts("watch_events")).select("event_id", "profile_id").collect()
    finally:
        spark.stop()
    expected = lake.read("watch_events", ["event_id", "profile_id"])
    assert sorted((r.event_id, r.profile_id) for r in rows) == sorted(
        zip(expected["event_id"], expected["profile_id"], strict=True)
    )


def test_a_lake_given_as_a_uri_and_from_settings(tmp_path: Path) -> None:
    from core.settings import Settings

    settings = Settings(home=tmp_path / "ws", lake_uri=(tmp_path / "bucket").as_uri(), lake_retention_hours=0)
    lake = Lake.from_settings(settings)
    assert lake.remote and lake.table_uri("watch_events") == f"{(tmp_path / 'bucket').as_uri()}/watch_events"
    for start in (0, 3):
        lake.write("watch_events", _events(start, 3), mode="append")
    assert lake.compact("watch_events").files_after == 1
    assert lake.erase({"profile_id": {"p1"}})["watch_events"] == 6
    assert lake.exists("watch_events") and lake.read("watch_events").empty
    assert (tmp_path / "bucket" / "watch_events" / "_delta_log").is_dir()
    assert not (tmp_path / "ws" / "lake" / "watch_events").exists()
    with pytest.raises(ConfigurationError, match="object store"):
        lake.table_dir("watch_events")


def test_migrate_into_another_location_leaves_the_old_lake_as_it_was(tmp_path: Path) -> None:
    _legacy_lake(tmp_path / "old")
    target = Lake((tmp_path / "bucket").as_uri())
    outcomes = {t.name: t.outcome for t in migrate_lake(tmp_path / "old", target)}
    assert outcomes["watch_events"] == "converted" and len(target.read("watch_events")) == 6
    assert (tmp_path / "old" / "watch_events" / "_manifest.json").exists()
    assert len(list((tmp_path / "old" / "watch_events").glob("part-*.parquet"))) == 3
    again = {t.name: t.outcome for t in migrate_lake(tmp_path / "old", target)}
    assert again["watch_events"] == "already migrated" and len(target.read("watch_events")) == 6


def test_a_conflicting_commit_waits_longer_after_each_conflict_and_never_long() -> None:
    """Waits double (with jitter) up to a cap, so a loser lets the winner's merge land; all of them stay short."""
    from core.lake import _COMMIT_ATTEMPTS, _backoff_s

    for attempt in range(1, _COMMIT_ATTEMPTS):
        low, high = (min(_backoff_s(attempt) for _ in range(200)), max(_backoff_s(attempt) for _ in range(200)))
        assert 0.0 < low < high, attempt  # jittered, so two losers do not retry in step
    assert max(_backoff_s(1) for _ in range(200)) < min(_backoff_s(4) for _ in range(200))  # it grows
    assert max(_backoff_s(_COMMIT_ATTEMPTS) for _ in range(200)) <= 3.0  # and is capped
    assert sum(max(_backoff_s(a) for _ in range(50)) for a in range(1, _COMMIT_ATTEMPTS)) < 10.0
