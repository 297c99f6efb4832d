"""Ingest speed: rows per second for the synthetic generator and each dataset loader.

Each case is parsed (or generated) into frames, then validated and written into
a fresh temporary lake, which is what ``marquee data generate`` and
``marquee data load`` do. Rows/s counts watch events (titles for the
catalog-only Netflix load). Datasets come from ``../shared/data``; a missing
one is reported and skipped.

Usage: ``python bench/bench_ingest.py [--scale 1.0] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from results_json import write_results

from core.lake import Lake
from features.ingest.frames import DatasetFrames, write_frames
from features.ingest.movielens import read_movielens
from features.ingest.movietweetings import read_movietweetings
from features.ingest.netflix import read_netflix_titles
from features.ingest.synthetic import SyntheticConfig, generate_frames

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _cases(scale: float) -> list[tuple[str, Path | None, Callable[[], DatasetFrames], str]]:
    config = SyntheticConfig(scale=scale)
    history = SyntheticConfig(scale=0.1 * scale)
    netflix = DATA / "netflix-titles" / "netflix_titles.csv"
    ml, mt = DATA / "ml-latest-small", DATA / "movietweetings-100k"
    return [
        (f"synthetic (scale {scale:g})", None, lambda: generate_frames(config), "watch_events"),
        ("movielens ml-latest-small", ml, lambda: read_movielens(ml), "watch_events"),
        ("movietweetings 100k", mt, lambda: read_movietweetings(mt), "watch_events"),
        ("netflix catalog", netflix, lambda: read_netflix_titles(netflix), "titles"),
        (
            f"netflix + history (scale {0.1 * scale:g})",
            netflix,
            lambda: read_netflix_titles(netflix, history),
            "watch_events",
        ),
    ]


def main() -> None:
    """Run every case and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic size knob (1.0 = 1M events)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest is reported")
    args = parser.parse_args()
    print(f"ingest benchmark on {os.cpu_count()} CPU(s)\n")
    print("| source | rows counted | total rows written | parse/generate s | validate+write s | total s | rows/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    table: list[list[object]] = []
    for name, path, read, counted in _cases(args.scale):
        if path is not None and not path.exists():
            print(f"| {name} | skipped: {path} is missing | | | | | |")
            continue
        best: tuple[float, float, DatasetFrames] | None = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                frames = read()
                parsed = time.perf_counter()
                write_frames(Lake(Path(tmp)), frames, started=began)
                done = time.perf_counter()
            if best is None or done - began < best[0] + best[1]:
                best = (parsed - began, done - parsed, frames)
        assert best is not None
        parse_s, write_s, frames = best
        rows = frames.counts()
        total = parse_s + write_s
        print(
            f"| {name} | {rows[counted]:,} {counted} | {sum(rows.values()):,} | {parse_s:.2f} | {write_s:.2f} | "
            f"{total:.2f} | {rows[counted] / total:,.0f} |"
        )
        table.append(
            [
                name,
                f"{rows[counted]:,} {counted}",
                sum(rows.values()),
                round(parse_s, 2),
                round(write_s, 2),
                round(total, 2),
                round(rows[counted] / total),
            ]
        )
    columns = ["source", "rows counted", "total rows written", "parse/generate s", "validate+write s", "total s"]
    write_results(
        "ingest",
        "Data ingest (`marquee data`)",
        [
            {
                "caption": "parse or generate, validate and write into a fresh lake; goal: 1M synthetic events < 60 s",
                "columns": [*columns, "rows/s"],
                "rows": table,
                "plot": {"x": "source", "y": ["total s"], "goal": 60, "log": True},
            }
        ],
    )


if __name__ == "__main__":
    main()
