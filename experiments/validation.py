"""Checks across definitions: unique keys, consistent layers, no overlapping traffic.

Within a layer every experiment must randomise the same unit with the same
layer salt, or "mutually exclusive" would not hold; and two running
experiments (holdouts included) may not own overlapping bucket ranges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from core.errors import ConflictError, InvalidInputError
from experiments.spec import Experiment, Status


def _percent(lo: int, hi: int) -> str:
    return f"{lo / 100:g}%-{hi / 100:g}%"


def consistency_problems(experiments: Iterable[Experiment]) -> list[str]:
    """Problems that make a set of definitions inconsistent (empty when fine)."""
    problems: list[str] = []
    by_key: dict[str, int] = defaultdict(int)
    by_layer: dict[str, list[Experiment]] = defaultdict(list)
    for experiment in experiments:
        by_key[experiment.key] += 1
        by_layer[experiment.layer].append(experiment)
    for key, count in by_key.items():
        if count > 1:
            problems.append(f"experiment key {key!r} is defined {count} times; keys must be unique")
    for layer, members in sorted(by_layer.items()):
        live = [e for e in members if e.status != Status.STOPPED]
        units = sorted({e.unit for e in live})
        if len(units) > 1:
            problems.append(
                f"layer {layer!r} mixes units {units} ({', '.join(e.key for e in live)}); "
                "experiments of one layer must randomise the same unit, move one to another layer"
            )
        salts = sorted({e.effective_layer_salt for e in live})
        if len(salts) > 1:
            problems.append(
                f"layer {layer!r} has different layer_salt values {salts}; "
                "every experiment of a layer must use the same layer_salt"
            )
        running = sorted((e for e in members if e.status == Status.RUNNING), key=lambda e: e.bucket_range)
        for i, first in enumerate(running):
            for second in running[i + 1 :]:
                (lo1, hi1), (lo2, hi2) = first.bucket_range, second.bucket_range
                if lo2 < hi1 and lo1 < hi2 and hi1 > lo1 and hi2 > lo2:
                    problems.append(
                        f"running experiments {first.key!r} ({_percent(lo1, hi1)}) and {second.key!r} "
                        f"({_percent(lo2, hi2)}) overlap in layer {layer!r}; set {second.key!r} offset to "
                        f"{hi1 / 100:g} or lower an allocation so that their ranges are disjoint"
                    )
        forced_in: dict[str, list[str]] = defaultdict(list)
        for experiment in running:
            for unit_id in experiment.forced:
                forced_in[unit_id].append(experiment.key)
        for unit_id, keys in sorted(forced_in.items()):
            if len(keys) > 1:
                problems.append(
                    f"unit {unit_id!r} is forced into several running experiments {keys} of layer {layer!r}; "
                    "a unit can be in only one experiment per layer"
                )
    return problems


def validate_experiments(experiments: list[Experiment]) -> list[Experiment]:
    """Raise if the definitions cannot run together; return them unchanged otherwise.

    Raises:
        ConflictError: two running experiments of a layer overlap, or a unit is forced into both.
        InvalidInputError: duplicate keys, or a layer mixing units or layer salts.
    """
    problems = consistency_problems(experiments)
    if not problems:
        return experiments
    message = "; ".join(problems)
    if any("overlap" in p or "forced into several" in p for p in problems):
        raise ConflictError(message)
    raise InvalidInputError(message)
