"""Fold-in quality: ndcg@10 of a model serving viewers from their request-time history vs the model refit with them.

Protocol ``foldin-users-80-20`` (``training/foldin.py``): train on users A, give
held-out users B their train history only at request time, score their last
20% of interactions; against the same model (same parameters) refit with B's
train interactions in it. One table per dataset, one row per model: the default
candidate models ``marquee train`` bundles into the champion (popularity, ALS,
LightFM, item-kNN, seqknn), plus EASE.

Then the champion itself (``training/foldin_ranked.py``): the neural ranker over
those five sources, as served, fold-in vs refit, once per ``--seeds`` seed (each
seed draws other users B; ml-latest-small has ~120 of them, so one draw moves the
ratio by several points): the ratio of the mean ndcg@10s and the per-seed range,
and the fold-in arm with its ranker trained on fitted-state lists, as ``marquee
train`` trains it.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_foldin.py [--data ../shared/data] [--models als,seqknn]
[--seeds 0,1,2] [--no-champion]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from features.ingest import read_dataset  # noqa: E402
from training.evaluation import title_features  # noqa: E402
from training.foldin import PROTOCOL, evaluate_foldin  # noqa: E402
from training.foldin_ranked import CHAMPION_SOURCES, evaluate_champion_foldin  # noqa: E402
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
    parser.add_argument("--seeds", default="0,1,2", help="user draws of the champion's row")
    parser.add_argument("--no-champion", action="store_true", help="skip the champion's row")
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
        if not args.no_champion:
            champion_row(interactions, frames.titles, args)


def champion_row(interactions: pd.DataFrame, titles: pd.DataFrame, args: argparse.Namespace) -> None:
    """The champion's fold-in vs refit over several user draws: the ratio of the means and the per-seed range."""
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    started = time.perf_counter()
    runs = [
        evaluate_champion_foldin(
            interactions, heldout_share=args.heldout_share, seed=seed, item_features=title_features(titles)
        )
        for seed in seeds
    ]
    ratios = [r["ratio"] for r in runs]

    def of_means(top: str, bottom: str) -> float:
        return sum(r[top] for r in runs) / sum(r[bottom] for r in runs)

    mean = of_means("foldin", "refit")
    per_seed = ", ".join(
        f"{r['foldin']:.4f}/{r['refit']:.4f} ({x:.3f}, {int(r['users'])} users)"
        for r, x in zip(runs, ratios, strict=True)
    )
    took = time.perf_counter() - started
    print(f"\nchampion: neural ranker over {', '.join(CHAMPION_SOURCES)}; seeds {seeds}, {took:.0f}s: {per_seed}")
    print("| champion, ratio of the mean ndcg@10 over the seeds | value | per seed |")
    print("|---|---|---|")
    rows = (
        ("fold-in / refit (the goal)", "foldin", "refit"),
        ("of which: the ranker learnt from users A only (refit generators' lists)", "refit_ranker_a", "refit"),
        ("of which: the generators fold in (the same ranker of users A)", "foldin_fitted_lists", "refit_ranker_a"),
        ("ranker trained on history lists vs fitted-state lists (fold-in)", "foldin", "foldin_fitted_lists"),
    )
    for label, top, bottom in rows:
        each = [r[top] / r[bottom] for r in runs]
        print(f"| {label} | **{of_means(top, bottom):.3f}** | {min(each):.3f}–{max(each):.3f} |")
    print(f"fold-in / refit ≥ {GOAL}: {'yes' if mean >= GOAL else 'no'}")


if __name__ == "__main__":
    main()
