"""Analysis end to end: outcomes with a hand-computed answer, a planted lift, SRM, reports."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInputError, NotFoundError
from experiments.analysis import analyze
from experiments.assignment import assign_many
from experiments.definitions import Experiment
from experiments.outcomes import outcomes_in_window
from experiments.report import write_report_html, write_report_markdown

T0 = pd.Timestamp("2026-11-20", tz="UTC")


def experiment(**fields: Any) -> Experiment:
    data: dict[str, Any] = {
        "key": "ranker-test",
        "layer": "ranking",
        "status": "running",
        "variants": [
            {"name": "control", "weight": 50, "payload": {"ranker": "champion"}},
            {"name": "challenger", "weight": 50, "payload": {"ranker": "challenger"}},
        ],
        "metrics": {"primary": "plays", "guardrails": ["watch_minutes", "completion"]},
        "forced": {"qa-1": "challenger"},
    }
    data.update(fields)
    return Experiment.model_validate(data)


def exposure_rows(profiles: list[str], variants: list[str], times: list[pd.Timestamp], key: str) -> pd.DataFrame:
    n = len(profiles)
    return pd.DataFrame(
        {
            "request_id": [f"req-{i}" for i in range(n)],
            "ts": times,
            "profile_id": profiles,
            "row_key": "home",
            "position": 0,
            "title_id": "t0",
            "model_version": "1",
            "experiment_key": key,
            "variant": variants,
        }
    )


def event(profile: str, title: str, ts: pd.Timestamp, position: int, duration: int) -> dict[str, Any]:
    return {"profile_id": profile, "title_id": title, "ts": ts, "position_s": position, "duration_s": duration}


def test_outcomes_follow_the_documented_definitions() -> None:
    day = pd.Timedelta(days=1)
    rows = [
        # p1, after its exposure at T0: title A reported three times on one day, capped at its 100 s duration.
        event("p1", "A", T0 + pd.Timedelta(hours=1), 30, 100),
        event("p1", "A", T0 + pd.Timedelta(hours=2), 90, 100),
        event("p1", "A", T0 + pd.Timedelta(hours=3), 120, 100),
        event("p1", "B", T0 + pd.Timedelta(hours=4), 45, 3000),  # 45 s: minutes, but not a play
        event("p1", "B", T0 + day + pd.Timedelta(hours=1), 600, 3000),  # next day: a play, not completed
        event("p1", "C", T0 - 3 * day, 300, 300),  # pre-period: a completed play
        event("p1", "D", T0 - 20 * day, 900, 900),  # before the 14-day pre-period
        event("p2", "A", T0 + pd.Timedelta(hours=5), 100, 100),  # p2 before its own exposure: pre-period
    ]
    events = pd.DataFrame(rows).assign(unit_id=lambda f: f["profile_id"])
    units = pd.DataFrame({"unit_id": ["p1", "p2"], "first": [T0, T0 + day], "end": T0 + 10 * day})
    units["pre_start"] = units["first"] - pd.Timedelta(days=14)
    post = outcomes_in_window(units, events, "first", "end")
    pre = outcomes_in_window(units, events, "pre_start", "first", prefix="pre_")
    assert post.loc["p1", "plays"] == 2
    assert post.loc["p1", "watch_minutes"] == pytest.approx((100 + 45 + 600) / 60)
    assert post.loc["p1", "completion"] == pytest.approx(0.5)
    assert (post.loc["p2", "plays"], post.loc["p2", "watch_minutes"]) == (0, 0)
    assert np.isnan(post.loc["p2", "completion"])
    assert (pre.loc["p1", "pre_plays"], pre.loc["p1", "pre_watch_minutes"], pre.loc["p1", "pre_completion"]) == (
        1,
        5,
        1,
    )
    assert pre.loc["p2", "pre_plays"] == 1


def simulate(
    n: int, lift: float, seed: int, drop_challenger: float = 0.0
) -> tuple[Experiment, pd.DataFrame, pd.DataFrame]:
    """n profiles, a per-profile play rate shared by pre and post periods, a planted lift on plays."""
    rng = np.random.default_rng(seed)
    definition = experiment()
    profiles = np.array([f"profile-{i}" for i in range(n)])
    variants = assign_many(definition, profiles)
    first = T0 + pd.to_timedelta(rng.uniform(0, 7, n), unit="D")
    keep = ~((variants == "challenger") & (rng.uniform(size=n) < drop_challenger))
    exposures = exposure_rows(list(profiles[keep]), list(variants[keep]), list(first[keep]), definition.key)
    rate = rng.gamma(2.0, 0.25, n)  # plays per day
    frames = []
    for sign, factor in ((-1, np.ones(n)), (1, np.where(variants == "challenger", 1 + lift, 1.0))):
        counts = rng.poisson(rate * factor * 14)
        owner = np.repeat(np.arange(n), counts)
        offsets = pd.to_timedelta(rng.uniform(0, 14, len(owner)), unit="D")
        frames.append(
            pd.DataFrame(
                {
                    "profile_id": profiles[owner],
                    "title_id": [f"t{k}" for k in rng.integers(0, 5_000, len(owner))],
                    "ts": first[owner] + sign * offsets,
                    "position_s": rng.integers(60, 3_000, len(owner)),
                    "duration_s": 3_000,
                }
            )
        )
    events = pd.concat(frames, ignore_index=True)
    return definition, exposures, events


def test_a_planted_lift_is_found_with_cuped_tightening_the_interval() -> None:
    definition, exposures, events = simulate(3_000, lift=0.15, seed=11)
    # A QA unit and a unit logged in both variants are left out of the analysis.
    extra = exposure_rows(
        ["qa-1", "profile-0", "profile-0"], ["challenger", "control", "challenger"], [T0] * 3, "ranker-test"
    )
    extra["request_id"] = ["qa-req", "dup-1", "dup-2"]
    report = analyze(
        definition, pd.concat([exposures, extra]), events, pre_period_days=14, end=T0 + pd.Timedelta(days=21)
    )
    plays = report.result("plays", "challenger")
    assert plays.lift_ci[0] < 0.15 < plays.lift_ci[1]
    assert plays.significant and plays.p_value < 0.001
    assert plays.variance_reduction > 0.3  # the pre-period play count predicts the post-period one
    assert plays.cuped_lift_ci[1] - plays.cuped_lift_ci[0] < plays.lift_ci[1] - plays.lift_ci[0]
    assert plays.cuped_lift == pytest.approx(0.15, abs=0.05)
    assert plays.sequential_p_value < 0.05 and plays.looks >= 14
    assert report.excluded == {"several_variants": 1, "forced_qa": 1}
    assert sum(report.units.values()) == 2_999
    assert not report.srm.flagged
    completion = report.result("completion", "challenger")
    assert completion.n_control <= report.units["control"]
    assert [r.metric for r in report.results] == ["plays", "watch_minutes", "completion"]


def test_cuped_corrects_a_chance_imbalance_in_an_aa_experiment() -> None:
    """With this seed the challenger's profiles happen to be heavier viewers (raw p < 0.01 in an A/A).

    Their pre-period shows the same imbalance, so CUPED removes it; the
    always-valid p-value, built for repeated looks, is not fooled either.
    """
    definition, exposures, events = simulate(2_000, lift=0.0, seed=12)
    report = analyze(definition, exposures, events, pre_period_days=14, end=T0 + pd.Timedelta(days=21))
    plays = report.result("plays", "challenger")
    assert plays.p_value < 0.01  # the chance imbalance the test is about
    assert plays.cuped_lift_ci[0] < 0 < plays.cuped_lift_ci[1]
    assert abs(plays.cuped_lift) < abs(plays.lift) / 3
    assert plays.sequential_p_value > 0.05
    no_cuped = analyze(definition, exposures, events, pre_period_days=0, end=T0 + pd.Timedelta(days=21))
    assert no_cuped.result("plays", "challenger").cuped_lift == pytest.approx(plays.lift)


def test_lost_exposures_raise_a_sample_ratio_mismatch() -> None:
    definition, exposures, events = simulate(6_000, lift=0.0, seed=13, drop_challenger=0.08)
    report = analyze(definition, exposures, events, pre_period_days=7)
    assert report.srm.flagged
    assert any("sample ratio mismatch" in w for w in report.warnings)


def test_account_experiments_aggregate_the_account_profiles() -> None:
    definition = experiment(unit="account", forced={})
    profiles = pd.DataFrame(
        {"profile_id": ["a1-p1", "a1-p2", "a2-p1", "a3-p1"], "account_id": ["a1", "a1", "a2", "a3"]}
    )
    exposures = exposure_rows(
        ["a1-p1", "a1-p2", "a2-p1", "a3-p1"], ["control", "control", "challenger", "control"], [T0] * 4, definition.key
    )
    day = pd.Timedelta(days=1)
    events = pd.DataFrame(
        [
            event("a1-p1", "A", T0 + day, 100, 100),
            event("a1-p2", "B", T0 + day, 100, 100),
            event("a3-p1", "C", T0 + day, 100, 100),
            event("a2-p1", "A", T0 + day, 100, 100),
        ]
    )
    report = analyze(definition, exposures, events, 7, profiles_df=profiles)
    assert report.units == {"control": 2, "challenger": 1}
    assert report.result("plays", "challenger").mean_control == pytest.approx(1.5)  # a1: 2 plays, a3: 1
    with pytest.raises(InvalidInputError, match="profiles_df"):
        analyze(definition, exposures, events, 7)


def test_bad_inputs_get_clear_errors() -> None:
    definition, exposures, events = simulate(50, lift=0.0, seed=14)
    with pytest.raises(NotFoundError, match="no exposures of experiment 'other'"):
        analyze(experiment(key="other"), exposures, events)
    with pytest.raises(InvalidInputError, match="position_s"):
        analyze(definition, exposures, events.drop(columns=["position_s"]))
    with pytest.raises(InvalidInputError, match="pre_period_days"):
        analyze(definition, exposures, events, pre_period_days=-1)
    with pytest.raises(NotFoundError, match="exposed before the end of the window"):
        analyze(definition, exposures, events, end=datetime(2026, 1, 1))  # naive datetimes are UTC


def test_reports_are_written_as_json_markdown_and_html(tmp_path: Path) -> None:
    definition, exposures, events = simulate(400, lift=0.2, seed=15)
    report = analyze(definition, exposures, events, pre_period_days=14)
    data = json.loads(report.to_json())
    assert data["experiment_key"] == "ranker-test"
    assert {r["metric"] for r in data["results"]} == {"plays", "watch_minutes", "completion"}
    assert data["srm"]["counts"] == report.units
    markdown = write_report_markdown(report, tmp_path / "report.md")
    text = markdown.read_text()
    assert "| plays | challenger |" in text and "![lift per metric and variant](report.lift.png)" in text
    png = (tmp_path / "report.lift.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    page = write_report_html(report, tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and "ranker-test" in page
