"""The demo's catalog: the Netflix titles file with synthetic viewing, found relative to the project."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_files import netflix

from core.lake import Lake
from marquee.commands.demo_catalog import CATALOG_ENV, DEFAULT_CATALOG, demo_catalog_path, fill_demo_lake


def test_the_default_is_the_shared_data_folder_beside_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    assert DEFAULT_CATALOG.parts[-4:] == ("..", "shared", "data", "netflix-titles")
    found = demo_catalog_path()
    if (DEFAULT_CATALOG / "netflix_titles.csv").is_file():
        assert found is not None and found.name == "netflix_titles.csv"
    else:
        assert found is None


def test_a_configured_catalog_is_loaded_with_synthetic_viewing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = netflix(tmp_path / "nf")
    monkeypatch.setenv(CATALOG_ENV, str(csv_path.parent))
    catalog = demo_catalog_path()
    assert catalog == csv_path.resolve()
    lake = Lake(tmp_path / "lake")
    report = fill_demo_lake(lake, seed=3, scale=0.002, catalog=catalog)
    assert report.source == "netflix+synthetic"
    titles = lake.read("titles")
    assert titles["title_id"].str.startswith("nf").all()
    events = lake.read("watch_events")
    assert len(events) > 0 and set(events["profile_id"]) <= set(lake.read("profiles")["profile_id"])


def test_synthetic_or_a_missing_file_generates_titles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CATALOG_ENV, "synthetic")
    assert demo_catalog_path() is None
    monkeypatch.setenv(CATALOG_ENV, str(tmp_path / "absent.csv"))
    assert demo_catalog_path() is None
    report = fill_demo_lake(Lake(tmp_path / "lake"), seed=3, scale=0.002, catalog=None)
    assert report.source == "synthetic"
