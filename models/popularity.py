"""Popularity and trending: the fallback everywhere, and the floor every model must beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.history import Histories
from models.scoring import ItemScorer, UserContext

DAY = 86_400


class PopularityModel(ItemScorer):
    """Items ranked by how many profiles watched them (or time-decayed: trending).

    Args:
        half_life_days: None counts every watch equally; a number weights each
            watch by ``0.5 ** (age in days / half_life_days)`` relative to the
            latest watch in the data, so what is hot now rises.
    """

    name: ClassVar[str] = "popularity"
    personalised: ClassVar[bool] = False

    def __init__(self, half_life_days: float | None = None) -> None:
        super().__init__(half_life_days=half_life_days)
        self.half_life_days = half_life_days
        self._pop = np.zeros(0, np.float32)

    def _fit(self, hist: Histories, **context: Any) -> None:
        weights = np.ones(len(hist.item_idx), np.float64)
        if self.half_life_days:
            age_days = (hist.ts.max() - hist.ts) / DAY
            weights = 0.5 ** (age_days / self.half_life_days)
        self._pop = np.bincount(hist.item_idx, weights=weights, minlength=hist.n_items).astype(np.float32)

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        return np.tile(self._pop, (len(users), 1))

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        return self._pop.copy()

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {"pop": self._pop}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._pop = arrays["pop"].astype(np.float32)

    def popularity(self) -> dict[str, float]:
        """item_id → popularity score, for fallbacks and novelty metrics."""
        return dict(zip(self.item_ids.tolist(), self._pop.tolist(), strict=True))


class TrendingModel(PopularityModel):
    """Popularity with a one-week half-life: what profiles watch right now."""

    name: ClassVar[str] = "trending"
    tuning_space: ClassVar[dict[str, list[Any]]] = {"half_life_days": [7.0, 30.0, 180.0]}

    def __init__(self, half_life_days: float | None = 7.0) -> None:
        super().__init__(half_life_days=half_life_days)
