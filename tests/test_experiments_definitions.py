"""Definitions: the shipped YAML, every validation error, and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConflictError, DataFormatError, InvalidInputError, NotFoundError
from experiments.definitions import (
    DEFAULT_DIR,
    MODEL_ALIASES,
    Experiment,
    Status,
    load_experiments,
    validate_experiments,
)
from experiments.store import ExperimentStore


def definition(key: str = "exp", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": key,
        "layer": "ranking",
        "status": "running",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-12-01T00:00:00Z",
        "variants": [
            {"name": "control", "weight": 50, "payload": {"ranker": "champion"}},
            {"name": "treatment", "weight": 50, "payload": {"ranker": "challenger"}},
        ],
    }
    data.update(fields)
    return data


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_definitions_load_and_include_a_running_champion_challenger_test() -> None:
    experiments = load_experiments(DEFAULT_DIR)
    running = [e for e in experiments if e.status == Status.RUNNING and e.kind == "experiment"]
    rankers = {frozenset(v.payload.get("ranker") or v.payload.get("model") or "" for v in e.variants) for e in running}
    assert frozenset({"champion", "challenger"}) in rankers
    assert {a for e in experiments for v in e.variants for a in v.payload.values()} <= {
        *MODEL_ALIASES,
        "default",
        "genre_first",
        "trending_first",
    }


def test_a_valid_file_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path / "one.yaml", definition(targeting={"countries": ["us"], "kids": "exclude"}))
    [experiment] = load_experiments(path)
    assert experiment.targeting.countries == ["US"]
    assert experiment.bucket_range == (0, 10_000)
    assert experiment.variant_bounds == [5_000, 10_000]
    assert experiment.control_variant == "control"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": [{"name": "a", "weight": 60}, {"name": "b", "weight": 30}]}, "must sum to 100, they sum to 90"),
        (
            {"variants": [{"name": "a", "weight": 50, "payload": {"ranker": "gpt"}}, {"name": "b", "weight": 50}]},
            "unknown model alias 'gpt'",
        ),
        (
            {"variants": [{"name": "a", "weight": 50, "payload": {"model": "latest"}}, {"name": "b", "weight": 50}]},
            "unknown model alias 'latest'",
        ),
        (
            {"variants": [{"name": "a", "weight": 50, "payload": {"layout": "grid"}}, {"name": "b", "weight": 50}]},
            "unknown layout 'grid'",
        ),
        (
            {"variants": [{"name": "a", "weight": 50, "payload": {"colour": "red"}}, {"name": "b", "weight": 50}]},
            "unknown payload key 'colour'",
        ),
        ({"end": "2026-10-01T00:00:00Z"}, "must be after start"),
        ({"offset": 60, "allocation": 50}, r"offset \+ allocation must be at most 100"),
        ({"allocation": 10.001}, "resolution of 0.01"),
        ({"status": "paused"}, "status"),
        ({"unit": "household"}, "unit"),
        ({"metrics": {"primary": "revenue"}}, "unknown metric 'revenue'"),
        ({"forced": {"qa-1": "nope"}}, "unknown variant"),
        ({"control": "nope"}, "control 'nope' is not one of the variants"),
        ({"layer": "global"}, "reserved for global holdouts"),
        ({"targeting": {"countries": ["USA"]}}, "ISO-3166"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_definitions_name_the_problem(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = write(tmp_path / "bad.yaml", definition(**change))
    with pytest.raises(DataFormatError, match=message) as info:
        load_experiments(path)
    assert "bad.yaml" in str(info.value)


def test_overlapping_running_experiments_in_one_layer_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", definition("a", allocation=40))
    write(tmp_path / "b.yaml", definition("b", offset=30, allocation=20))
    with pytest.raises(ConflictError, match=r"'a' \(0%-40%\) and 'b' \(30%-50%\) overlap in layer 'ranking'"):
        load_experiments(tmp_path)
    # Disjoint ranges, other layers, or a draft are all fine.
    write(tmp_path / "b.yaml", definition("b", offset=40, allocation=20))
    write(tmp_path / "c.yaml", definition("c", layer="home"))
    write(tmp_path / "d.yaml", definition("d", status="draft"))
    assert [e.key for e in load_experiments(tmp_path)] == ["a", "b", "c", "d"]


def test_cross_definition_rules() -> None:
    a = Experiment.model_validate(definition("a", allocation=50))
    with pytest.raises(InvalidInputError, match="defined 2 times"):
        validate_experiments([a, a.model_copy(update={"status": Status.DRAFT})])
    b = Experiment.model_validate(definition("b", offset=50, allocation=50, unit="account"))
    with pytest.raises(InvalidInputError, match="mixes units"):
        validate_experiments([a, b])
    c = Experiment.model_validate(definition("c", offset=50, allocation=50, layer_salt="other"))
    with pytest.raises(InvalidInputError, match="different layer_salt"):
        validate_experiments([a, c])
    forced_a = Experiment.model_validate(definition("fa", allocation=10, forced={"qa": "control"}))
    forced_b = Experiment.model_validate(definition("fb", offset=10, allocation=10, forced={"qa": "control"}))
    with pytest.raises(ConflictError, match="forced into several"):
        validate_experiments([forced_a, forced_b])


def test_yaml_syntax_errors_and_missing_paths(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\n variants: [\n")
    with pytest.raises(DataFormatError, match=r"broken.yaml, line \d+: not valid YAML"):
        load_experiments(broken)
    with pytest.raises(NotFoundError, match="no experiment definitions"):
        load_experiments(tmp_path / "absent")
    listed = write(tmp_path / "many.yaml", [definition("x", layer="l1"), definition("y", layer="l2")])
    assert [e.key for e in load_experiments(listed)] == ["x", "y"]


def test_holdout_defaults_and_rules() -> None:
    holdout = Experiment.model_validate({"key": "h", "kind": "holdout", "layer": "global", "allocation": 5})
    assert [(v.name, v.weight) for v in holdout.variants] == [("holdout", 100)]
    with pytest.raises(ValueError, match="may not carry a payload"):
        Experiment.model_validate(
            {
                "key": "h",
                "kind": "holdout",
                "variants": [{"name": "x", "weight": 100, "payload": {"layout": "default"}}],
            }
        )


def test_store_put_get_and_set_status(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "defs")
    assert store.list() == []
    saved = store.put(Experiment.model_validate(definition("a", allocation=30)))
    assert store.get("a") == saved
    store.put(Experiment.model_validate(definition("b", offset=30, allocation=30, status="draft")))
    assert [e.key for e in store.list()] == ["a", "b"]
    # Ramping b into a's range while both run is refused, and nothing on disk changes.
    before = sorted(p.read_text() for p in (tmp_path / "defs").glob("*.yaml"))
    with pytest.raises(ConflictError, match="overlap"):
        store.put(Experiment.model_validate(definition("b", offset=20, allocation=30)))
    assert sorted(p.read_text() for p in (tmp_path / "defs").glob("*.yaml")) == before
    assert store.set_status("b", "running").status == Status.RUNNING
    assert ExperimentStore(tmp_path / "defs").get("b").status == Status.RUNNING
    assert not list((tmp_path / "defs").glob(".*.tmp"))
    with pytest.raises(NotFoundError, match="no experiment 'zzz'"):
        store.get("zzz")


def test_store_updates_a_definition_inside_a_multi_definition_file(tmp_path: Path) -> None:
    write(tmp_path / "both.yaml", [definition("x", layer="l1"), definition("y", layer="l2")])
    store = ExperimentStore(tmp_path)
    store.set_status("y", "stopped")
    assert {e.key: e.status for e in load_experiments(tmp_path / "both.yaml")} == {"x": "running", "y": "stopped"}
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["both.yaml"]
