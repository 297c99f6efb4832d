"""Datasets into the lake: the synthetic generator and the public-dataset loaders.

Each source has a pure ``read_*`` function (files -> :class:`DatasetFrames`,
no lake, no output) and a ``load_*`` function that writes the frames into a
lake, replacing its titles, episodes, accounts, profiles and watch events.
:func:`load_dataset` dispatches on a format name.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.errors import InvalidInputError
from core.lake import Lake
from features.ingest.frames import DatasetFrames, IngestReport, write_frames

#: Format names :func:`load_dataset` and ``marquee data load`` accept.
FORMATS = ("movielens", "movietweetings", "netflix", "synthetic")

__all__ = ["FORMATS", "DatasetFrames", "IngestReport", "load_dataset", "read_dataset"]


def read_dataset(fmt: str, path: str | Path | None = None) -> DatasetFrames:
    """Parse a dataset of format ``fmt`` into lake frames without writing anything.

    Args:
        fmt: one of :data:`FORMATS`; ``synthetic`` ignores ``path`` and uses the default config.
        path: the dataset's folder or file.

    Raises:
        InvalidInputError: unknown format or missing path.
        DataFormatError: the files are missing or malformed.
    """
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InvalidInputError(f"unknown dataset format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if name == "synthetic":
        from features.ingest.synthetic import SyntheticConfig, generate_frames

        return generate_frames(SyntheticConfig())
    if path is None:
        raise InvalidInputError(f"format {name!r} needs a path to the dataset's folder or file")
    if name == "movielens":
        from features.ingest.movielens import read_movielens

        return read_movielens(path)
    if name == "movietweetings":
        from features.ingest.movietweetings import read_movietweetings

        return read_movietweetings(path)
    from features.ingest.netflix import read_netflix_titles

    return read_netflix_titles(path)


def load_dataset(fmt: str, path: str | Path | None, lake: Lake) -> IngestReport:
    """Parse a dataset and replace the lake's dataset tables with it; on any error the lake is untouched."""
    started = time.perf_counter()
    frames = read_dataset(fmt, path)
    return write_frames(lake, frames, started=started, path=None if path is None else str(path))
