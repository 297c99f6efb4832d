"""Exposure logging: rows reach the lake table, journaled rows survive a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.domain import Exposure
from core.errors import DataFormatError
from core.lake import Lake
from core.settings import Settings
from experiments.exposures import ExposureWriter, read_exposures

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def exposures(
    request: str, n: int = 3, experiment: str = "ranker-challenger", variant: str = "control"
) -> list[Exposure]:
    return [
        Exposure(
            request_id=request,
            ts=T0 + timedelta(seconds=i, microseconds=123_456),
            profile_id=f"profile-{request}",
            row_key="top-picks",
            position=i,
            title_id=f"title-{i}",
            model_version="7",
            experiment_key=experiment,
            variant=variant,
        )
        for i in range(n)
    ]


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake(settings.workspace.lake_dir)


def test_direct_write_is_in_the_lake_when_it_returns(lake: Lake) -> None:
    writer = ExposureWriter(lake)
    writer.write(exposures("r1"))
    writer.write(exposures("r2", 2, variant="challenger"))
    writer.write([])
    table = lake.read("exposures")
    assert len(table) == 5
    assert sorted(table["request_id"].unique()) == ["r1", "r2"]
    assert set(table.loc[table["request_id"] == "r2", "variant"]) == {"challenger"}
    assert str(table["ts"].dt.tz) == "UTC"
    assert table["ts"].min() == T0 + timedelta(microseconds=123_000)  # the lake keeps milliseconds


def test_duplicates_are_dropped_within_a_batch_and_on_read(lake: Lake) -> None:
    writer = ExposureWriter(lake)
    batch = exposures("r1")
    writer.write(batch + batch[:1])  # a retry inside one batch
    writer.write(batch[:2])  # a retried request in a later batch
    assert len(lake.read("exposures")) == 5
    assert len(read_exposures(lake)) == 3
    assert len(read_exposures(lake, "ranker-challenger")) == 3
    assert read_exposures(lake, "other").empty


def test_journaled_writes_are_durable_before_the_flush(lake: Lake, tmp_path: Path) -> None:
    journal = tmp_path / "journal" / "exposures.jsonl"
    writer = ExposureWriter(lake, journal=journal, flush_rows=10)
    writer.write(exposures("r1", 4))
    assert writer.pending == 4
    assert not lake.exists("exposures")
    assert len(journal.read_text().splitlines()) == 4
    writer.write(exposures("r2", 6))  # reaches flush_rows: moved to the lake
    assert writer.pending == 0
    assert len(lake.read("exposures")) == 10
    assert not journal.exists()
    writer.write(exposures("r3", 2))
    writer.close()
    assert len(lake.read("exposures")) == 12


def test_a_crashed_writer_loses_nothing(lake: Lake, tmp_path: Path) -> None:
    journal = tmp_path / "exposures.jsonl"
    crashed = ExposureWriter(lake, journal=journal, flush_rows=1_000)
    crashed.write(exposures("r1", 3))
    # The process dies mid-flush: the journal was renamed but not yet written to the lake,
    # then new rows arrived and the last write was torn.
    journal.rename(journal.with_name(journal.name + ".flushing"))
    crashed.write(exposures("r2", 2))
    with open(journal, "a") as handle:
        handle.write('{"request_id": "r9", "ts": "2026-')
    recovered = ExposureWriter(lake, journal=journal)
    assert recovered.pending == 5
    assert recovered.flush() == 5
    assert sorted(lake.read("exposures")["request_id"].unique()) == ["r1", "r2"]
    assert not journal.exists() and not journal.with_name(journal.name + ".flushing").exists()


def test_a_corrupt_line_inside_the_journal_is_an_error_not_a_loss(lake: Lake, tmp_path: Path) -> None:
    journal = tmp_path / "exposures.jsonl"
    ExposureWriter(lake, journal=journal).write(exposures("r1", 1))
    journal.write_text("not json\n" + journal.read_text())
    with pytest.raises(DataFormatError, match="line 1"):
        ExposureWriter(lake, journal=journal)
    assert journal.exists()  # kept for a person to repair


def test_invalid_exposures_are_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="position"):
        Exposure(request_id="r", ts=T0, profile_id="p", row_key="k", position=-1, title_id="t")
    with pytest.raises(ValueError, match="flush_rows"):
        ExposureWriter(Lake(Path("unused")), flush_rows=0)


def test_one_title_can_be_logged_once_per_experiment(lake: Lake) -> None:
    ranker = exposures("r1", 2, experiment="ranker-challenger", variant="challenger")
    layout = exposures("r1", 2, experiment="home-layout", variant="genre-first")
    ExposureWriter(lake).write(ranker + layout)
    assert len(read_exposures(lake)) == 4
    assert set(read_exposures(lake, "home-layout")["variant"]) == {"genre-first"}
