"""QoE metrics from playback reports, and guardrails on them in experiment analysis and the CLI."""

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
from core.qoe import latest_reports, metrics_from_totals, session_totals
from experiments.analysis import analyze
from experiments.definitions import Experiment
from marquee.cli import main

T0 = pd.Timestamp("2026-11-20", tz="UTC")
N_PER_ARM = 150


def _experiment(guardrails: list[str]) -> Experiment:
    return Experiment.model_validate(
        {
            "key": "player-abr",
            "layer": "player",
            "status": "running",
            "variants": [{"name": "control", "weight": 50}, {"name": "eager-abr", "weight": 50}],
            "metrics": {"primary": "watch_minutes", "guardrails": guardrails},
        }
    )


def _world(rebuffer_s_treatment: float, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Exposures, watch events and playback reports of 2 x N_PER_ARM profiles, one session each.

    Control stalls about 1 s per 10-minute session; the treatment ``rebuffer_s_treatment`` s.
    """
    rng = np.random.default_rng(seed)
    profiles = np.array([f"p{i}" for i in range(2 * N_PER_ARM)])
    variants = np.array(["control"] * N_PER_ARM + ["eager-abr"] * N_PER_ARM)
    exposures = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(profiles))],
            "ts": T0,
            "profile_id": profiles,
            "row_key": "home",
            "position": 0,
            "title_id": "t0",
            "model_version": "1",
            "experiment_key": "player-abr",
            "variant": variants,
        }
    )
    events = pd.DataFrame(
        {
            "profile_id": profiles,
            "title_id": "t1",
            "ts": T0 + pd.Timedelta(hours=2),
            "position_s": rng.integers(300, 900, len(profiles)),
            "duration_s": 3000,
        }
    )
    stall = np.where(variants == "control", 1.0, rebuffer_s_treatment) * rng.uniform(0.5, 1.5, len(profiles))
    first = pd.DataFrame(
        {
            "session_id": [f"s-{p}" for p in profiles],
            "report_seq": 0,
            "profile_id": profiles,
            "title_id": "t1",
            "ts": T0 + pd.Timedelta(hours=1),
            "startup_ms": rng.integers(300, 900, len(profiles)),
            "played_s": 5.0,
            "rebuffer_count": 0,
            "rebuffer_s": 0.0,
            "bitrate_switches": 0,
            "avg_bitrate_kbps": 3000,
            "fatal_error": None,
            "ended": False,
        }
    )
    last = first.assign(
        report_seq=1,
        ts=T0 + pd.Timedelta(hours=1, minutes=10),
        played_s=600.0,
        rebuffer_count=1,
        rebuffer_s=stall,
        bitrate_switches=rng.integers(0, 4, len(profiles)),
        ended=True,
    )
    return exposures, events, pd.concat([last, first], ignore_index=True)  # order must not matter


def test_the_latest_report_is_the_session_and_metrics_are_ratios_of_sums() -> None:
    reports = pd.DataFrame(
        [
            {"session_id": "a", "report_seq": 1, "startup_ms": 500, "played_s": 90.0, "rebuffer_count": 1,
             "rebuffer_s": 10.0, "bitrate_switches": 2, "avg_bitrate_kbps": 2000, "fatal_error": None},
            {"session_id": "a", "report_seq": 0, "startup_ms": 500, "played_s": 5.0, "rebuffer_count": 0,
             "rebuffer_s": 0.0, "bitrate_switches": 0, "avg_bitrate_kbps": 1000, "fatal_error": None},
            {"session_id": "b", "report_seq": 0, "startup_ms": None, "played_s": 0.0, "rebuffer_count": 0,
             "rebuffer_s": 0.0, "bitrate_switches": 0, "avg_bitrate_kbps": 0, "fatal_error": "http_403"},
        ]
    )  # fmt: skip
    sessions = latest_reports(reports)
    assert sessions.set_index("session_id")["played_s"].to_dict() == {"a": 90.0, "b": 0.0}
    per_session = metrics_from_totals(session_totals(sessions)).set_axis(sessions["session_id"])
    assert per_session.loc["a", "rebuffer_ratio"] == pytest.approx(10 / 100)
    assert per_session.loc["a", "rebuffers_per_hour"] == pytest.approx(1 / (90 / 3600))
    assert np.isnan(per_session.loc["b", "rebuffer_ratio"])  # never played: undefined, not perfect
    assert np.isnan(per_session.loc["b", "startup_ms"])
    both = metrics_from_totals(session_totals(sessions).sum().to_frame().T).iloc[0]
    assert both["fatal_error_rate"] == 0.5
    assert both["startup_ms"] == 500  # the mean over sessions that started
    assert both["avg_bitrate_kbps"] == pytest.approx(2000)  # weighted by played time


def test_a_rebuffer_ratio_that_rises_breaches_the_guardrail() -> None:
    exposures, events, reports = _world(rebuffer_s_treatment=6.0)
    report = analyze(_experiment(["rebuffer_ratio", "startup_ms"]), exposures, events, 0, playback_df=reports)
    result = report.result("rebuffer_ratio", "eager-abr")
    assert result.mean_control == pytest.approx(1 / 601, rel=0.2)
    assert result.mean_treatment > 4 * result.mean_control
    breaches = {(c.metric, c.variant) for c in report.breaches}
    assert breaches == {("rebuffer_ratio", "eager-abr")}
    assert any("guardrail breached: rebuffer_ratio" in w for w in report.warnings)
    held = next(c for c in report.guardrail_checks if c.metric == "startup_ms")
    assert held.worse_when == "higher" and not held.breached


def test_no_breach_when_the_treatment_stalls_no_more() -> None:
    exposures, events, reports = _world(rebuffer_s_treatment=1.0)
    report = analyze(_experiment(["rebuffer_ratio"]), exposures, events, 0, playback_df=reports)
    assert report.guardrail_checks and not report.breaches
    # Without playback reports the QoE metric is undefined, and the report says so.
    bare = analyze(_experiment(["rebuffer_ratio"]), exposures, events, 0)
    assert np.isnan(bare.result("rebuffer_ratio", "eager-abr").mean_treatment)
    assert not bare.breaches
    assert any("no playback reports" in w for w in bare.warnings)


def test_an_unknown_guardrail_is_refused() -> None:
    with pytest.raises(ValueError, match="rebuffer_ratio"):
        _experiment(["rebuffer_ration"])


def test_cli_flags_a_breach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "ws"))
    monkeypatch.delenv("MARQUEE_EXPERIMENTS_DIR", raising=False)
    exposures, events, reports = _world(rebuffer_s_treatment=6.0)
    lake = Lake(tmp_path / "ws" / "lake")
    lake.write("exposures", exposures)
    lake.write("watch_events", events.assign(event_id=[f"e{i}" for i in range(len(events))]))
    lake.write(
        "playback_reports",
        reports.assign(seq=range(len(reports)), format="hls", device="web", edge="us-east", country="US"),
    )
    definitions = tmp_path / "defs"
    definitions.mkdir()
    data: dict[str, Any] = _experiment(["rebuffer_ratio"]).model_dump(mode="json", exclude_none=True)
    (definitions / "player_abr.yaml").write_text(yaml.safe_dump(data))
    out = tmp_path / "report.json"
    args = ["analyze", "player-abr", "--out", str(out), "--path", str(definitions), "--pre-period-days", "0"]
    monkeypatch.setattr(sys, "argv", ["marquee", "experiments", *args, "--fail-on-breach"])
    with pytest.raises(SystemExit) as exit_:
        main()
    captured = capsys.readouterr()
    assert exit_.value.code == 3, captured.err
    assert "GUARDRAIL BREACHED: rebuffer_ratio rose" in captured.out
    checks = json.loads(out.read_text())["guardrail_checks"]
    assert [(c["metric"], c["breached"]) for c in checks] == [("rebuffer_ratio", True)]
