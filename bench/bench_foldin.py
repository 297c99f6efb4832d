"""Fold-in quality: ndcg@10 of a model serving viewers from their request-time history vs the model refit with them.

Protocol ``foldin-users-80-20`` (``training/foldin.py``): train on users A, give
held-out users B their train history only at request time, score their last
20% of interactions; against the same model (same parameters) refit with B's
train interactions in it. One table per dataset, one row per model: the default
candidate models ``marquee train`` bundles into the champion (popularity, ALS,
LightFM, item-kNN, seqknn), plus EASE.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_foldin.py [--data ../shared/data] [--models als,seqknn]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from features.ingest import read_dataset  # noqa: E402
from training.evaluation import title_features  # noqa: E402
from training.foldin import PROTOCOL, evaluate_foldin  # noqa: E402
from training.protocol import interactions_from_events  # noqa: E402

DATASETS = (("movielens", "ml-latest-small"), ("movietweetings", "movietweetings-100k"))
MODELS = "popularity,als,lightfm,item_knn,seqknn,ease"
#: The goal of issue 14: fold-in at least this share of refit.
GOAL = 0.95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--heldout-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for fmt, folder in DATASETS:
        path = args.data / folder
        if not path.exists():
            print(f"{folder}: not found under {args.data}; skipped")
            continue
        frames = read_dataset(fmt, path)
        interactions = interactions_from_events(frames.watch_events)
        started = time.perf_counter()
        results = evaluate_foldin(
            interactions,
            models,
            heldout_share=args.heldout_share,
            seed=args.seed,
            item_features=title_features(frames.titles),
        )
        users = int(next(iter(results.values()))["users"]) if results else 0
        print(f"\n{PROTOCOL} on {folder}: {users} held-out users, {time.perf_counter() - started:.0f}s\n")
        print(f"| model | ndcg@10 fold-in | ndcg@10 refit | fold-in / refit | ≥ {GOAL} |")
        print("|---|---|---|---|---|")
        for name, row in results.items():
            ok = "yes" if row["ratio"] >= GOAL else "no"
            print(f"| {name} | {row['foldin']:.4f} | {row['refit']:.4f} | {row['ratio']:.3f} | {ok} |")


if __name__ == "__main__":
    main()
