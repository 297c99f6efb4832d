"""Quality benchmark: the ``temporal-user-80-20`` protocol on every dataset and on variants of it.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_quality.py \\
        [--datasets ml,mt,synth-noorder,synth-seq] [--variants full,early50,window2y,core20,shuffled] \\
        [--models a,b] [--out FILE]

A generalisation discipline: a change that helps one set and hurts another shows at once.
Each dataset runs as is (``full``) and as variants built here, never tuned for:

* ``early50``  — the earliest-joining 50 % of users (by first interaction);
* ``window2y`` — only the last two years of the data's own clock;
* ``core20``   — a denser subset: users and items with 20+ interactions (iterated);
* ``shuffled`` — each user's timestamps shuffled among that user's interactions: the
  control with no sequential signal (a sequence model must not lose to EASE here).

Two generated "unseen" sets check generalisation on data no constant was chosen on
(``synth-noorder``: an ml-1m-like catalog and user count with latent tastes and power-law
popularity, order-free histories; ``synth-seq``: the same with a drifting taste, so order
carries signal). Hyper-parameters are tuned on the validation split only, then each model is
refit on all of train (EVALUATION.md). Prints one Markdown table per run and a summary of
ndcg@10, recall@20 and coverage@10 of the best model against recency-weighted EASE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = REPO.parent / "shared" / "data"
REAL = {
    "ml": ("movielens", DATA / "ml-latest-small"),
    "mt": ("movietweetings", DATA / "movietweetings-100k"),
}
YEAR = 365 * 86_400


# ------------------------------------------------------------------------------ variants
def early_users(df: pd.DataFrame, share: float = 0.5) -> pd.DataFrame:
    """Interactions of the earliest-joining ``share`` of users (by first timestamp)."""
    first = df.groupby("user_id")["ts"].min().sort_values(kind="mergesort")
    keep = set(first.index[: max(1, int(len(first) * share))])
    return df[df["user_id"].isin(keep)].reset_index(drop=True)


def time_window(df: pd.DataFrame, years: float = 2.0) -> pd.DataFrame:
    """Only the last ``years`` of the data's own clock."""
    return df[df["ts"] >= df["ts"].max() - int(years * YEAR)].reset_index(drop=True)


def k_core(df: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """Users and items with at least ``k`` interactions each, filtered until stable."""
    while True:
        users = df.groupby("user_id")["item_id"].transform("size")
        items = df.groupby("item_id")["user_id"].transform("size")
        kept = df[(users >= k) & (items >= k)]
        if len(kept) == len(df):
            return kept.reset_index(drop=True)
        df = kept


def shuffled_order(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each user's timestamps permuted among that user's interactions: no sequential signal left."""
    rng = np.random.default_rng(seed)
    df = df.sort_values(["user_id", "ts"], kind="mergesort").reset_index(drop=True)
    keys = rng.random(len(df)) + df["user_id"].factorize()[0]
    order = np.argsort(keys, kind="stable")
    out = df.copy()
    out["ts"] = df["ts"].to_numpy()[order]
    return out


VARIANTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "full": lambda df: df,
    "early50": early_users,
    "window2y": time_window,
    "core20": k_core,
    "shuffled": shuffled_order,
}


# ----------------------------------------------------------------------- generated sets
def synthetic(
    *, ordered: bool, users: int = 6000, items: int = 3700, mean_len: int = 40, dim: int = 16, seed: int = 7
) -> pd.DataFrame:
    """An ml-1m-like generated set: latent tastes, power-law popularity, optional drifting taste.

    Each user draws ``~mean_len`` items with probability ∝ popularity × exp(taste · item). With
    ``ordered`` the taste drifts along a random walk as the user watches (what comes next depends
    on what came last); without it the timestamps are independent of the choice.
    """
    rng = np.random.default_rng(seed)
    item_vec = rng.normal(size=(items, dim)).astype(np.float32)
    log_pop = -1.0 * np.log(np.arange(1, items + 1)) + rng.normal(scale=0.3, size=items)
    rows: list[tuple[str, str, int]] = []
    start = 1_000_000_000
    for u in range(users):
        n = int(min(400, max(5, rng.lognormal(np.log(mean_len), 0.8))))
        taste = rng.normal(size=dim).astype(np.float32)
        t0 = start + int(rng.integers(0, 3 * YEAR))
        times = np.sort(t0 + rng.integers(0, YEAR, size=n))
        if not ordered:  # order-free: n distinct draws at once (Gumbel top-n)
            logits = log_pop + 1.5 * (item_vec @ taste) / np.sqrt(dim) + rng.gumbel(size=items)
            chosen = np.argsort(-logits)[:n]
        else:
            chosen = np.empty(n, np.int64)
            mask = np.zeros(items, bool)
            for step in range(n):
                logits = log_pop + 1.5 * (item_vec @ taste) / np.sqrt(dim) + rng.gumbel(size=items)
                logits[mask] = -np.inf
                item = int(np.argmax(logits))
                mask[item] = True
                chosen[step] = item
                taste = 0.6 * taste + 0.8 * item_vec[item] + rng.normal(scale=0.3, size=dim).astype(np.float32)
        rows.extend((f"u{u}", f"s{item}", int(t)) for item, t in zip(chosen.tolist(), times.tolist(), strict=True))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    if not ordered:
        df = shuffled_order(df, seed)
    df["weight"] = np.float32(1.0)
    return df


def load(key: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """A dataset as a protocol frame and its title feature tokens."""
    from features.ingest import read_dataset
    from training.evaluation import title_features
    from training.protocol import interactions_from_events

    if key in REAL:
        fmt, path = REAL[key]
        frames = read_dataset(fmt, path)
        return interactions_from_events(frames.watch_events), title_features(frames.titles)
    if key == "synth-noorder":
        return synthetic(ordered=False), {}
    if key == "synth-seq":
        return synthetic(ordered=True), {}
    raise SystemExit(f"unknown dataset {key!r}")


def main() -> None:
    from training.evaluation import DEFAULT_MODELS, evaluate_models, format_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated; baselines always run")
    parser.add_argument("--datasets", default="ml,mt,synth-noorder,synth-seq")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", default="", help="explicit dataset/variant pairs, e.g. mt/full,ml/shuffled")
    parser.add_argument("--out", type=Path, default=None, help="write all reports as JSON here (after each run)")
    args = parser.parse_args()
    reports: dict[str, dict[str, object]] = {}
    summary = []
    runs = [tuple(r.split("/")) for r in args.runs.split(",") if r] or [
        (key, variant)
        for key in args.datasets.split(",")
        for variant in args.variants.split(",")
        if not key.startswith("synth") or variant in ("full", "shuffled")
    ]
    loaded: dict[str, tuple[pd.DataFrame, dict[str, list[str]]]] = {}
    for key, variant in runs:
        if key in REAL and not REAL[key][1].exists():
            print(f"skipping {key}: {REAL[key][1]} is missing")
            continue
        if key not in loaded:
            loaded[key] = load(key)
        base, features = loaded[key]
        frame = VARIANTS[variant](base)
        started, cpu = time.perf_counter(), time.process_time()
        report = evaluate_models(
            frame,
            [m for m in args.models.split(",") if m],
            dataset=f"{key}/{variant}",
            item_features=features,
            progress=False,
        )
        seconds = time.perf_counter() - started
        report["seconds"] = round(seconds, 1)
        report["cpu_seconds"] = round(time.process_time() - cpu, 1)
        report["load_average"] = os.getloadavg()
        reports[f"{key}/{variant}"] = report
        print(
            f"\n### {key}/{variant} — {report['split']} ({seconds:.0f} s wall, {report['cpu_seconds']:.0f} s CPU, "
            f"load {report['load_average'][0]:.1f})\n"
        )
        print(format_table(report))
        summary.append(summary_row(f"{key}/{variant}", report))
        print("\n" + summary_table(summary), flush=True)
        if args.out:
            args.out.write_text(json.dumps(reports, indent=2, default=str))


def summary_row(name: str, report: dict[str, object]) -> dict[str, object]:
    """ndcg@10, recall@20, coverage@10 of the best model and of recency-EASE / EASE, and the ratios."""
    models = report["models"]
    assert isinstance(models, dict)
    best = report["best"]
    rease = models.get("recency_ease")
    ease = models.get("ease")
    row: dict[str, object] = {"run": name, "best": best, "ratio": report["ratio"]}
    if best is not None:
        m = models[best]
        row |= {"ndcg": m["ndcg@10"], "recall": m["recall@20"], "coverage": m["coverage@10"]}
        if rease:
            row["vs_rease"] = round(m["ndcg@10"] / max(rease["ndcg@10"], 1e-12), 3)
            row["rease"] = (rease["ndcg@10"], rease["recall@20"], rease["coverage@10"])
        if ease:
            row["vs_ease"] = round(m["ndcg@10"] / max(ease["ndcg@10"], 1e-12), 3)
    return row


def summary_table(rows: list[dict[str, object]]) -> str:
    """The summary as Markdown."""
    lines = [
        "| run | best | ndcg@10 | recall@20 | coverage@10 | rEASE ndcg, recall, cov | × rEASE | × EASE | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rease = r.get("rease")
        rease_text = ", ".join(f"{v:.4f}" for v in rease) if isinstance(rease, tuple) else "—"
        lines.append(
            f"| {r['run']} | {r['best']} | {r.get('ndcg', float('nan')):.4f} | {r.get('recall', float('nan')):.4f} | "
            f"{r.get('coverage', float('nan')):.3f} | {rease_text} | {r.get('vs_rease', '—')} | "
            f"{r.get('vs_ease', '—')} | {r['ratio']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
