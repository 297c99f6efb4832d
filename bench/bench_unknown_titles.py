"""Titles no served model knows: does a watch of one move the page, and what it costs (issue 14).

On a workspace that ``bench/bench_realtime.py`` or ``marquee demo --no-serve``
built (``--home``), for the champion and the challenger, in-process:

1. load: ``load_catalog`` and the pipeline's construction (with the content
   stand-in table of ``serving/content_neighbours.py``, when the tree has it);
2. known histories: ``--viewers`` profiles' latest 20 watches from the lake,
   ``recommend`` k=60 and ``similar`` k=20 to the latest title, CPU per page,
   and the answers themselves (``--dump``), so two trees can be compared bitwise
   (the request clock is fixed: the ranker's profile columns read it);
3. unknown titles: ``--probes`` catalog titles that no served model can read,
   each watched alone (personal or fallback, different from the empty-history
   page?) and added to a real history (does the top 10 move?), and "similar to" it.

Run on each tree, then compare:
``PYTHONPATH=. MARQUEE_HOME=WS python bench/bench_unknown_titles.py --dump before.json``
and ``python bench/bench_unknown_titles.py --compare before.json after.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLOCK = 1_632_700_000.0  # after the bench's synthetic events


def share(genres: set[str], ids: list[str], genres_of: Any) -> float:
    """The share of ``ids`` with a genre in ``genres``."""
    return sum(bool(genres & set(genres_of(t) or [])) for t in ids) / max(len(ids), 1)


def measure(viewers: int, probes: int) -> dict[str, Any]:
    from core.lake import Lake
    from core.settings import Settings
    from models.bundle import ModelBundle
    from serving.catalog import load_catalog
    from serving.contract import ViewerContext, WatchedTitle
    from serving.features import OnlineRankerFeatures
    from serving.loader import RegistryClient
    from serving.pipeline import SERIES_SEEDS, RecommendationPipeline

    time.time = lambda: CLOCK  # the ranker's profile columns read the clock: fixed, so two runs compare bitwise
    settings = Settings()
    lake = Lake.from_settings(settings)
    registry = RegistryClient(settings.mlflow_uri, settings.registered_model)
    started = time.perf_counter()
    catalog = load_catalog(lake)
    result: dict[str, Any] = {"catalog_s": time.perf_counter() - started}
    features = OnlineRankerFeatures.open(settings)
    events = lake.read("watch_events").sort_values("ts")
    rng = random.Random(7)
    profiles = sorted(events["profile_id"].unique().tolist())
    rng.shuffle(profiles)
    chosen = set(profiles[:viewers])
    histories = {
        p: list(dict.fromkeys(g["title_id"].tolist()[-20:])) for p, g in events.groupby("profile_id") if p in chosen
    }
    now = datetime.fromtimestamp(CLOCK, UTC)

    def context(ids: list[str], completed: bool = False) -> ViewerContext:
        history = [
            WatchedTitle(title_id=t, ts=now - timedelta(hours=len(ids) - i), progress=1.0 if completed else 0.5,
                         completed=completed)
            for i, t in enumerate(ids)
        ]  # fmt: skip
        return ViewerContext(profile_id="p", history=history, maturity_level=3, kids=False, country="US")

    for alias in ("champion", "challenger"):
        version = registry.version_of(alias)
        if version is None:
            continue
        bundle = ModelBundle.load(registry.download(version))
        started = time.perf_counter()
        pipe = RecommendationPipeline(bundle, catalog, version=version, features=features, memo_s=0)
        row: dict[str, Any] = {"build_s": time.perf_counter() - started, "generators": list(pipe.generators)}
        content = getattr(pipe, "content", None)
        row["table_keys"] = len(content) if content is not None else None
        contexts = [context(histories[p]) for p in profiles[:viewers]]
        answers, cpu = [], 0.0
        for c in contexts:
            t = time.thread_time()
            rec = pipe.recommend(c, k=60)
            sim = pipe.similar(c, catalog.canonical(c.history[-1].title_id), k=20)
            cpu += time.thread_time() - t
            answers.append([rec.source, rec.reason, rec.items, sim.items])
        row["known_answers"], row["known_ms"] = answers, 1000 * cpu / len(contexts)
        vocabulary = {i for g in pipe.generators.values() for i in g.history.items.ids.tolist()}  # type: ignore[attr-defined]
        unknown = [
            t for t in catalog.title_ids
            if t not in vocabulary and not any(e in vocabulary for e in catalog.episodes_of(t)[:SERIES_SEEDS])
        ]  # fmt: skip
        row["unknown_titles"] = len(unknown)
        empty = [t for t, _ in pipe.recommend(context([]), k=10).items]
        picks = random.Random(3).sample(unknown, min(probes, len(unknown)))
        out = []
        for i, title in enumerate(picks):
            alone = pipe.recommend(context([title], completed=True), k=10)
            base = contexts[i % len(contexts)]
            plus = base.model_copy(update={"history": [*base.history, *context([title], completed=True).history]})
            moved = [t for t, _ in pipe.recommend(base, k=10).items] != [t for t, _ in pipe.recommend(plus, k=10).items]
            try:
                similar = pipe.similar(context([]), title, k=10).source
            except Exception as exc:  # NotFoundError before this change
                similar = type(exc).__name__
            got = [t for t, _ in alone.items]
            genres = set(catalog.genres_of(title) or [])
            out.append({
                "alone": f"{alone.source}/{alone.reason}", "differs": got != empty, "moved": moved, "similar": similar,
                "genre_share": share(genres, got, catalog.genres_of) if alone.source == "model" else None,
            })  # fmt: skip
        row["probes"] = out
        result[alias] = row
    return result


def summary(name: str, result: dict[str, Any]) -> None:
    print(f"\n### {name}: catalog load {result['catalog_s']:.2f} s\n")
    print("| alias | generators | build s | table keys | unknown titles | known page ms | watched alone | "
          "differs from empty | moves a real top 10 | similar answers | genre share |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for alias in ("champion", "challenger"):
        row = result.get(alias)
        if not row:
            continue
        probes = row["probes"]
        alone: dict[str, int] = {}
        for p in probes:
            alone[p["alone"]] = alone.get(p["alone"], 0) + 1
        shares = [p["genre_share"] for p in probes if p["genre_share"] is not None]
        print(f"| {alias} | {', '.join(row['generators'])} | {row['build_s']:.2f} | {row['table_keys']} | "
              f"{row['unknown_titles']} | {row['known_ms']:.2f} | {alone} | {sum(p['differs'] for p in probes)} | "
              f"{sum(p['moved'] for p in probes)} | {sum(p['similar'] == 'model' for p in probes)} | "
              f"{sum(shares) / len(shares) if shares else float('nan'):.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--dump", type=Path, help="write the measures and answers here (JSON)")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="compare two dumps")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        for name, result in (("before", before), ("after", after)):
            summary(name, result)
        for alias in ("champion", "challenger"):
            if alias in before and alias in after:
                pairs = list(zip(before[alias]["known_answers"], after[alias]["known_answers"], strict=True))
                print(f"\n{alias}: known-history answers identical (ids, order, scores) {sum(a == b for a, b in pairs)}"
                      f" of {len(pairs)}")  # fmt: skip
        return
    result = measure(args.viewers, args.probes)
    summary("this tree", result)
    if args.dump:
        args.dump.write_text(json.dumps(result))
    print(f"\nload average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
