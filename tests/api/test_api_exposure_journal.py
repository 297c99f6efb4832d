"""Exposures survive a crash of the API process between flushes, and erased profiles stay erased."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from catalog_api.services.exposures import ExposureLog
from core.lake import Lake

REPO_ROOT = Path(__file__).resolve().parents[2]

CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime, timezone
    from pathlib import Path
    from catalog_api.services.exposures import ExposureLog, ExposurePage
    from core.lake import Lake

    root = Path(sys.argv[1])
    log = ExposureLog(Lake(root / "lake"), journal_dir=root / "journal")
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    for n, profile in enumerate(sys.argv[3].split(",")):
        log.log_page(ExposurePage(f"req-{n}", now, profile, [("trending", "popularity", ["t1", "t2", "t3"])],
                                  [("ranker-challenger", "challenger")]))
    if sys.argv[2]:
        log.forget_profiles(set(sys.argv[2].split(",")))
    os._exit(0)  # a crash: no flush, no close
    """
)


def _crash_after_logging(root: Path, profiles: str, forget: str = "") -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(root), forget, profiles],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_a_crash_between_flushes_loses_no_exposure(tmp_path: Path) -> None:
    _crash_after_logging(tmp_path, "p1,p2")
    lake = Lake(tmp_path / "lake")
    assert not lake.exists("exposures"), "nothing was flushed before the crash"

    log = ExposureLog(lake, journal_dir=tmp_path / "journal")  # the next process start
    exposures = lake.read("exposures")
    assert len(exposures) == 6
    assert set(exposures["profile_id"]) == {"p1", "p2"}
    assert set(exposures["experiment_key"]) == {"ranker-challenger"}
    assert exposures.groupby("request_id")["position"].apply(list).tolist() == [[0, 1, 2], [0, 1, 2]]
    log.close()
    assert not list((tmp_path / "journal").glob("exposures-*")), "journals are gone once in the lake"


def test_erased_profiles_are_not_replayed_after_a_crash(tmp_path: Path) -> None:
    _crash_after_logging(tmp_path, "p1,p2,p1", forget="p1")
    lake = Lake(tmp_path / "lake")
    ExposureLog(lake, journal_dir=tmp_path / "journal").close()
    assert set(lake.read("exposures")["profile_id"]) == {"p2"}


def test_a_live_log_keeps_its_journal_until_it_flushes(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from catalog_api.services.exposures import ExposurePage

    lake = Lake(tmp_path / "lake")
    first = ExposureLog(lake, journal_dir=tmp_path / "journal")
    first.log_page(ExposurePage("r1", datetime(2024, 5, 1, tzinfo=UTC), "p9", [("top_picks", "3", ["a", "b"])]))
    # A second log in the same live process must not steal the first one's journal.
    ExposureLog(lake, journal_dir=tmp_path / "journal").close()
    assert not lake.exists("exposures")
    assert first.flush() == 2
    assert lake.read("exposures")["title_id"].tolist() == ["a", "b"]
    first.close()
    assert not list((tmp_path / "journal").glob("exposures-*"))


def test_a_page_replayed_twice_is_written_once_and_two_pages_under_one_id_are_both_kept(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from catalog_api.services.exposures import ExposurePage

    lake = Lake(tmp_path / "lake")
    log = ExposureLog(lake)
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    page = ExposurePage("req-1", now, "p1", [("trending", "popularity", ["t1", "t2"])], [])
    other = ExposurePage("req-1", now, "p2", [("trending", "popularity", ["t3"])], [])
    for p in (page, page, other):
        log.log_page(p)
    assert log.flush() == 3, "the replayed page once, the other page under its own id"
    exposures = lake.read("exposures")
    assert sorted(exposures["title_id"]) == ["t1", "t2", "t3"]
    assert exposures["request_id"].nunique() == 2
    assert log.buffered == 0
