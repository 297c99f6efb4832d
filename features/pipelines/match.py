"""Profile × title genre match, shared by the on-demand feature view and in-memory rankers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def genre_match_scores(
    affinity_genres: Sequence[Any], affinity_shares: Sequence[Any], title_genres: Sequence[Any]
) -> npt.NDArray[np.float64]:
    """For each row, the sum of the profile's shares over the title's genres.

    Args:
        affinity_genres: per row, the profile's top genres (list[str]) or None.
        affinity_shares: per row, the matching shares (list[float]) or None.
        title_genres: per row, the title's genres (list[str]) or None.

    Returns:
        shape (n,) float64 in [0, 1]; 0 where any input is missing.
    """
    out = np.zeros(len(title_genres), dtype=np.float64)
    for i, (names, shares, genres) in enumerate(zip(affinity_genres, affinity_shares, title_genres, strict=True)):
        if names is None or shares is None or genres is None or len(names) == 0 or len(genres) == 0:
            continue
        wanted = set(genres)
        out[i] = float(sum(float(s) for n, s in zip(names, shares, strict=False) if n in wanted))
    return out
