"""The demo's catalog: the real Netflix titles with synthetic viewing over them.

``make demo`` used to invent its catalog (names that repeated on one page,
synopses like "A horror film from US."). It now loads the public Netflix titles
catalog (names, descriptions, cast, ratings, countries; ``features.ingest.netflix``)
from the project's ``../shared/data/netflix-titles`` (or ``MARQUEE_DEMO_CATALOG``)
and simulates profiles and watch events over it with the synthetic generator.
Without the file the demo falls back to the generated catalog and says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.lake import Lake
from features.ingest.frames import IngestReport
from features.ingest.synthetic import SyntheticConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the catalog lives, relative to the project (a shared data folder beside the checkout).
DEFAULT_CATALOG = REPO_ROOT / ".." / "shared" / "data" / "netflix-titles"
#: Environment variable naming another catalog CSV (or its folder); ``synthetic`` forces generated titles.
CATALOG_ENV = "MARQUEE_DEMO_CATALOG"
CSV_NAME = "netflix_titles.csv"


def demo_catalog_path() -> Path | None:
    """The Netflix catalog CSV the demo loads, or ``None`` to generate titles instead."""
    configured = os.environ.get(CATALOG_ENV, "").strip()
    if configured.lower() == "synthetic":
        return None
    path = Path(configured).expanduser() if configured else DEFAULT_CATALOG
    if path.is_dir():
        path = path / CSV_NAME
    return path.resolve() if path.is_file() else None


def fill_demo_lake(lake: Lake, seed: int, scale: float, catalog: Path | None) -> IngestReport:
    """Replace the lake's dataset: ``catalog`` with synthetic viewing, or a generated service.

    ``scale`` sizes the viewing (profiles and events) either way; the real catalog keeps all its titles.
    """
    config = SyntheticConfig(seed=seed, scale=scale, show_progress=True)
    if catalog is None:
        from features.ingest.synthetic import generate

        return generate(lake, config)
    from features.ingest.netflix import load_netflix_titles

    return load_netflix_titles(catalog, lake, config)
