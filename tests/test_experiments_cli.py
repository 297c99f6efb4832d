"""`marquee experiments ...` through the real entry point (exit codes and output included)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from core.lake import Lake
from experiments.assignment import assign_many
from experiments.definitions import DEFAULT_DIR, load_experiments
from marquee.cli import main


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["marquee", "experiments", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("MARQUEE_EXPERIMENTS_DIR", raising=False)
    return tmp_path / "ws"


def test_validate_accepts_the_shipped_definitions_and_refuses_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(monkeypatch, capsys, "validate", str(DEFAULT_DIR))
    assert code == 0 and "ok: " in out and "ranker-challenger" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"key": "bad", "variants": [{"name": "a", "weight": 70}, {"name": "b", "weight": 20}]})
    )
    code, out, err = run(monkeypatch, capsys, "validate", str(bad))
    assert code == 2
    assert "bad.yaml" in err and "must sum to 100, they sum to 90" in err
    assert "Traceback" not in err


def test_list_json_has_the_documented_shape(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(monkeypatch, capsys, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    expected = {e.key: e for e in load_experiments(DEFAULT_DIR)}
    assert {r["key"] for r in rows} == set(expected)
    for row in rows:
        assert set(row) == {"key", "layer", "status", "allocation", "variants"}
        definition = expected[row["key"]]
        assert row["layer"] == definition.layer and row["allocation"] == definition.allocation
        assert row["variants"] == [{"name": v.name, "weight": v.weight} for v in definition.variants]


def test_list_honours_the_experiments_dir_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "one.yaml").write_text(yaml.safe_dump({"key": "only-one", "variants": [{"name": "a", "weight": 100}]}))
    monkeypatch.setenv("MARQUEE_EXPERIMENTS_DIR", str(folder))
    code, out, _ = run(monkeypatch, capsys, "list")
    assert code == 0 and "only-one" in out and "ranker-challenger" not in out


def test_assign_prints_one_line_per_unit_with_dash_outside(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = load_experiments(DEFAULT_DIR)
    experiment = next(e for e in experiments if e.key == "ranker-challenger")
    units = [f"profile-{i}" for i in range(200)] + ["qa-profile-challenger"]
    code, out, _ = run(monkeypatch, capsys, "assign", "ranker-challenger", *units)
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert [unit for unit, _ in lines] == units
    holdouts = [e for e in experiments if e.kind == "holdout" and e.layer == "global"]
    expected = ["-" if v is None else v for v in assign_many(experiment, np.array(units), holdouts)]
    assert [variant for _, variant in lines] == expected
    assert lines[-1][1] == "challenger"  # forced for QA
    assert {"-", "control", "challenger"} <= {variant for _, variant in lines}
    code, _, err = run(monkeypatch, capsys, "assign", "no-such-key", "p1")
    assert code == 2 and "no experiment 'no-such-key'" in err


def test_status_changes_a_definition_in_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "x.yaml").write_text(yaml.safe_dump({"key": "x", "variants": [{"name": "a", "weight": 100}]}))
    code, out, _ = run(monkeypatch, capsys, "status", "x", "running", "--path", str(folder))
    assert code == 0 and out.strip() == "x: running"
    assert load_experiments(folder)[0].status == "running"
    code, _, err = run(monkeypatch, capsys, "status", "x", "paused", "--path", str(folder))
    assert code == 2 and "draft, running, stopped" in err


def _fill_lake(lake: Lake, definition: Any) -> None:
    rng = np.random.default_rng(3)
    profiles = np.array([f"profile-{i}" for i in range(600)])
    variants = assign_many(definition.model_copy(update={"allocation": 100}), profiles)
    t0 = pd.Timestamp("2026-11-21", tz="UTC")
    first = (t0 + pd.to_timedelta(rng.uniform(0, 3, len(profiles)), unit="D")).floor("ms")
    lake.write(
        "exposures",
        pd.DataFrame(
            {
                "request_id": [f"r{i}" for i in range(len(profiles))],
                "ts": first,
                "profile_id": profiles,
                "row_key": "home",
                "position": 0,
                "title_id": "t0",
                "experiment_key": definition.key,
                "variant": variants,
            }
        ),
    )
    owner = np.repeat(np.arange(len(profiles)), rng.poisson(6, len(profiles)))
    lake.write(
        "watch_events",
        pd.DataFrame(
            {
                "event_id": [f"e{i}" for i in range(len(owner))],
                "profile_id": profiles[owner],
                "title_id": [f"t{k}" for k in rng.integers(0, 300, len(owner))],
                "ts": (first[owner] + pd.to_timedelta(rng.uniform(-5, 5, len(owner)), unit="D")).floor("ms"),
                "position_s": rng.integers(0, 3_000, len(owner)),
                "duration_s": 3_000,
            }
        ),
    )


def test_analyze_writes_the_report_from_the_workspace_lake(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = next(e for e in load_experiments(DEFAULT_DIR) if e.key == "ranker-challenger")
    _fill_lake(Lake(workspace / "lake"), definition)
    out_file, md = tmp_path / "out" / "report.json", tmp_path / "out" / "report.md"
    code, out, err = run(
        monkeypatch, capsys, "analyze", "ranker-challenger", "--out", str(out_file), "--markdown", str(md)
    )
    assert code == 0, err
    report = json.loads(out_file.read_text())
    assert report["experiment_key"] == "ranker-challenger"
    assert sum(report["units"].values()) == 600
    assert report["primary_metric"] == "watch_minutes"
    assert "challenger vs control: watch_minutes lift" in out
    assert md.exists() and (tmp_path / "out" / "report.lift.png").exists()
    code, _, err = run(monkeypatch, capsys, "analyze", "home-layout", "--out", str(out_file))
    assert code == 2 and "no exposures of experiment 'home-layout'" in err
