"""Quality benchmark: the ``temporal-user-80-20`` protocol on the real datasets, every model, one table each.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_quality.py [--models a,b] [--datasets ml,mt] [--out FILE]

Hyper-parameters are tuned on the validation split only, then each model is refit
on all of train (see EVALUATION.md). Prints Markdown tables for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"
DATASETS = {
    "ml": ("movielens", DATA / "ml-latest-small"),
    "mt": ("movietweetings", DATA / "movietweetings-100k"),
}
MODELS = "item_knn,als,lightfm,sasrec,seqknn"


def main() -> None:
    from features.ingest import read_dataset
    from training.evaluation import evaluate_models, format_table, title_features
    from training.protocol import interactions_from_events

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS, help=f"comma-separated (default {MODELS}); baselines always run")
    parser.add_argument("--datasets", default="ml,mt", help="ml (ml-latest-small), mt (MovieTweetings 100K)")
    parser.add_argument("--out", type=Path, default=None, help="write all reports as JSON here")
    args = parser.parse_args()
    reports = {}
    for key in args.datasets.split(","):
        fmt, path = DATASETS[key]
        if not path.exists():
            print(f"skipping {key}: {path} is missing")
            continue
        started = time.perf_counter()
        frames = read_dataset(fmt, path)
        report = evaluate_models(
            interactions_from_events(frames.watch_events),
            [m for m in args.models.split(",") if m],
            dataset=f"{fmt}:{path.name}",
            item_features=title_features(frames.titles),
        )
        reports[key] = report
        print(f"\n### {report['dataset']} — {report['split']}\n")
        print(format_table(report))
        print(
            f"\nbest: {report['best']} at {report['ratio']:.3f} × the best baseline ({report['best_baseline']}); "
            f"run took {time.perf_counter() - started:.0f} s"
        )
    if args.out:
        args.out.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
