"""Batch engines: feature-table build and training-frame time vs events, pandas vs Spark.

For each size, a synthetic service (``features.ingest.synthetic``) is written to a
temporary lake, then each engine

* builds the four feature tables from the lake (``build_feature_tables``: read,
  compute, write the parquet tables Feast reads), and
* makes the training frames: interactions from the events and the protocol's
  validation split (``load_training_data`` + ``split_validation``).

Spark runs on ``--master`` (``local[2]`` by default, the test setting); its session
is started once before the clock starts (that start-up is reported apart).

    nice -n 10 .venv/bin/python bench/bench_engines.py                      # 1M events
    nice -n 10 .venv/bin/python bench/bench_engines.py --events 1000000 10000000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from core.lake import Lake  # noqa: E402
from core.settings import Settings  # noqa: E402


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def bench_size(events: int, engines: list[str], settings: Settings, spark: object | None, seed: int) -> list[dict]:
    """One synthetic lake of ``events`` watch events, measured with every engine."""
    from features.ingest.synthetic import SyntheticConfig, generate
    from features.pipelines import build_feature_tables
    from training.data import load_training_data
    from training.pipeline import split_validation

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        lake = Lake(Path(tmp) / "lake")
        scale = events / 1_000_000
        _, generate_s = _timed(lambda: generate(lake, SyntheticConfig(seed=seed, scale=scale, n_events=events)))
        print(f"generated {events:,} events in {generate_s:.0f} s", flush=True)
        for engine in engines:
            session = spark if engine == "spark" else None
            report, features_s = _timed(
                lambda session=session, out=Path(tmp) / f"feast-{engine}": build_feature_tables(
                    lake, out, spark=session
                )
            )
            data, load_s = _timed(lambda session=session: load_training_data(lake, session))
            split, split_s = _timed(lambda session=session, data=data: split_validation(data, session))
            row = {
                "events": events,
                "engine": engine,
                "feature_tables_s": features_s,
                "feature_rows": sum(report.rows.values()),
                "interactions_s": load_s,
                "split_s": split_s,
                "training_frames_s": load_s + split_s,
                "interactions": len(data.interactions),
                "train_rows": len(split.train),
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--engines", nargs="+", default=["pandas", "spark"], choices=["pandas", "spark"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-engines-ws-") as home:
        settings = Settings(
            home=Path(home), engine="spark", spark_master=args.master, spark_driver_memory=args.driver_memory
        )
        spark = None
        if "spark" in args.engines:
            from features.spark.session import spark_session

            spark, start_s = _timed(lambda: spark_session(settings))
            print(f"spark session ({args.master}) started in {start_s:.1f} s", flush=True)
        rows = [row for n in args.events for row in bench_size(n, args.engines, settings, spark, args.seed)]
    print()
    print(
        f"{'events':>12} {'engine':<8} {'feature tables':>15} {'interactions':>13} {'split':>8} {'training frames':>16}"
    )
    for r in rows:
        print(
            f"{r['events']:>12,} {r['engine']:<8} {r['feature_tables_s']:>14.1f}s {r['interactions_s']:>12.1f}s "
            f"{r['split_s']:>7.1f}s {r['training_frames_s']:>15.1f}s"
        )
    print(f"(spark master {args.master}; machine load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
