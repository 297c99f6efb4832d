"""`marquee data` end to end through the real entry point (exit codes included)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ingest_files import ml_csv, netflix

from core.lake import Lake
from marquee.cli import main


def _run(
    argv: list[str], home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setenv("MARQUEE_HOME", str(home))
    monkeypatch.setattr(sys, "argv", ["marquee", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_then_describe(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, _ = _run(
        ["data", "generate", "--titles", "40", "--profiles", "30", "--events", "700", "--seed", "3"],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert code == 0 and "watch_events 700" in out
    code, out, _ = _run(["data", "describe"], tmp_path, monkeypatch, capsys)
    assert code == 0
    assert "interactions: 700" in out and "titles: 40" in out
    code, out, _ = _run(["data", "describe", "--json"], tmp_path, monkeypatch, capsys)
    tables = {t["table"]: t for t in json.loads(out)}
    assert tables["watch_events"]["rows"] == 700
    assert tables["watch_events"]["min_time"].startswith("2024-01")
    assert tables["profiles"]["rows"] == 30
    assert tables["titles"]["time_column"] == "date_added" and tables["titles"]["min_time"] is not None


def test_load_and_describe(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, _ = _run(
        ["data", "load", "movielens", str(ml_csv(tmp_path / "ml"))], tmp_path / "ws", monkeypatch, capsys
    )
    assert code == 0 and "movielens:ml" in out
    code, out, _ = _run(["data", "describe"], tmp_path / "ws", monkeypatch, capsys)
    assert "interactions: 3 · users (profiles with events): 2 · titles: 3" in out


def test_netflix_with_history(tmp_path: Path, monkeypatch, capsys) -> None:
    argv = ["data", "load", "netflix", str(netflix(tmp_path)), "--history", "--scale", "0.001", "--seed", "5"]
    code, out, _ = _run(argv, tmp_path / "ws", monkeypatch, capsys)
    assert code == 0 and "netflix+synthetic" in out and "watch_events 1,000" in out
    assert "note:" in out  # the repaired runtime is reported


def test_bad_input_exits_2_with_one_line_and_keeps_the_lake(tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "ws"
    assert _run(["data", "load", "movielens", str(ml_csv(tmp_path / "ml"))], home, monkeypatch, capsys)[0] == 0
    lake = Lake(home / "lake")
    before = lake.read("watch_events")
    bad = ml_csv(tmp_path / "bad")
    (bad / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,oops\n")
    code, _, err = _run(["data", "load", "movielens", str(bad)], home, monkeypatch, capsys)
    assert code == 2
    assert "ratings.csv, line 2, column 'timestamp'" in err and "Traceback" not in err
    code, _, err = _run(["data", "load", "parquet", str(bad)], home, monkeypatch, capsys)
    assert code == 2 and "use one of: movielens, movietweetings, netflix, synthetic" in err
    code, _, err = _run(["data", "load", "movielens", str(tmp_path / "missing")], home, monkeypatch, capsys)
    assert code == 2 and "no such file or folder" in err
    code, _, err = _run(["data", "generate", "--scale", "-1"], home, monkeypatch, capsys)
    assert code == 2 and "scale must be > 0" in err
    assert lake.read("watch_events").equals(before)


def test_describe_empty_lake(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, _ = _run(["data", "describe"], tmp_path, monkeypatch, capsys)
    assert code == 0 and "is empty" in out and "marquee data generate" in out


def test_demo_runs_its_named_steps(tmp_path: Path, monkeypatch, capsys) -> None:
    # --no-serve: the servers and Ctrl-C are covered by tests/test_demo.py in a real process.
    code, out, _ = _run(["demo", "--scale", "0.002", "--seed", "1", "--no-serve"], tmp_path, monkeypatch, capsys)
    if code != 0:
        pytest.fail(f"demo failed: {out}")
    assert "[1/" in out and "generate: " in out and "watch_events 2,000" in out
    assert "interactions: 2,000" in out
    assert "features: " in out and "train: " in out and "registered version 1" in out
    assert "serve: skipped" in out
