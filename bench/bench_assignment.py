"""Assignment speed: vectorised assignments per second and single-call latency.

Goals (the experiments issue): at least 1,000,000 assignments/s vectorised and
at most 20 µs for one call. Run: ``python bench/bench_assignment.py
[--sizes 1000000 5000000 10000000] [--calls 20000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import numpy as np
from results_json import write_results

from experiments.assignment import AssignmentContext, assign, assign_many, assign_one, global_holdouts
from experiments.definitions import DEFAULT_DIR, load_experiments


def make_ids(n: int) -> np.ndarray:
    """``profile-<n>`` ids as a numpy str array (what a caller would pass)."""
    return np.strings.add("profile-", np.arange(n).astype("U12"))


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return min(timings)


def latencies(fn: Callable[[int], object], calls: int) -> tuple[float, float]:
    """p50 and p99 of one call in µs."""
    samples = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter_ns()
        fn(i)
        samples[i] = time.perf_counter_ns() - start
    return float(np.percentile(samples, 50) / 1e3), float(np.percentile(samples, 99) / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    experiments = load_experiments(DEFAULT_DIR)
    experiment = next(e for e in experiments if e.key == "ranker-challenger")
    holdouts = global_holdouts(experiments)
    now = datetime(2026, 12, 1, tzinfo=UTC)

    print(f"assignment benchmark on {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s)")
    print()
    print("| vectorised `assign_many` (with global holdout) | units | seconds | assignments/s |")
    print("|---|---:|---:|---:|")
    vector_rows: list[list[object]] = []
    for size in args.sizes:
        ids = make_ids(size)
        seconds = best_of(2, partial(assign_many, experiment, ids, holdouts))
        print(f"| str ids `profile-<n>` | {size:,} | {seconds:.2f} | {size / seconds:,.0f} |")
        vector_rows.append(["str ids `profile-<n>`", size, round(seconds, 2), round(size / seconds)])
        del ids
    uuids = np.array([str(uuid.UUID(int=int(x))) for x in np.random.default_rng(0).integers(0, 2**63, 1_000_000)])
    seconds = best_of(2, partial(assign_many, experiment, uuids, holdouts))
    print(f"| str ids, 36-char UUIDs | {len(uuids):,} | {seconds:.2f} | {len(uuids) / seconds:,.0f} |")
    vector_rows.append(["str ids, 36-char UUIDs", len(uuids), round(seconds, 2), round(len(uuids) / seconds)])

    single_ids = [f"profile-{i}" for i in range(args.calls)]
    contexts = [AssignmentContext(u, country="US", device="tv") for u in single_ids]
    p50_one, p99_one = latencies(lambda i: assign_one(experiment, single_ids[i], holdouts), args.calls)
    p50_all, p99_all = latencies(lambda i: assign(experiments, contexts[i], now=now), args.calls)
    print()
    print("| single call | p50 µs | p99 µs |")
    print("|---|---:|---:|")
    print(f"| `assign_one(experiment, unit_id, holdouts)` | {p50_one:.1f} | {p99_one:.1f} |")
    print(f"| `assign(all {len(experiments)} shipped definitions, context)` | {p50_all:.1f} | {p99_all:.1f} |")
    write_results(
        "assignment",
        "Experiment assignment speed",
        [
            {
                "caption": "vectorised `assign_many` (with global holdout); goal ≥ 1,000,000 assignments/s",
                "columns": ["ids", "units", "seconds", "assignments/s"],
                "rows": vector_rows,
                "plot": {"x": "units", "y": ["assignments/s"], "kind": "bar", "label": "ids"},
            },
            {
                "caption": "single call latency; goal ≤ 20 µs",
                "columns": ["call", "p50 µs", "p99 µs"],
                "rows": [
                    ["`assign_one(experiment, unit_id, holdouts)`", round(p50_one, 1), round(p99_one, 1)],
                    [
                        f"`assign(all {len(experiments)} shipped definitions, context)`",
                        round(p50_all, 1),
                        round(p99_all, 1),
                    ],
                ],
            },
        ],
    )


if __name__ == "__main__":
    main()
