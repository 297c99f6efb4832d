"""``TimePopularity``: what others watched around the profile's own "now".

Global popularity ranks by all-time counts and trending by the data's last day;
under a temporal protocol (and for a profile that returns after a year) the
titles that matter are those watched around *this profile's* latest watch. Each
item's daily watch counts are weighted by ``exp(-|day - now| / tau_days)``.
Cheap (items × days counts) and a useful blend member on trend-driven data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.history import Histories
from models.scoring import ItemScorer, UserContext
from models.sequence import DAY, day_histogram
from models.sparse_io import csr_from_arrays, csr_to_arrays


class TimePopularity(ItemScorer):
    """Popularity around the user's latest watch (kernel width ``tau_days``, tuned on validation).

    Args:
        tau_days: width of the exponential time kernel, in days.
    """

    name: ClassVar[str] = "time_popularity"
    personalised: ClassVar[bool] = False
    tuning_space: ClassVar[dict[str, list[Any]]] = {"tau_days": [3.0, 14.0, 60.0, 365.0]}
    similar_priority: ClassVar[int] = 90

    def __init__(self, tau_days: float = 30.0) -> None:
        super().__init__(tau_days=tau_days)
        self.tau_days = float(tau_days)
        self._days = sp.csr_matrix((0, 0), dtype=np.float32)
        self._first_day = 0

    def _fit(self, hist: Histories, **context: Any) -> None:
        self._days, self._first_day = day_histogram(hist)

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        n_days = self._days.shape[1]
        now = np.array([ctx.now // DAY - self._first_day for ctx in users], np.float64)
        gap = np.abs(np.arange(n_days, dtype=np.float64)[:, None] - now[None, :])
        kernel = np.exp(-gap / max(self.tau_days, 1e-6)).astype(np.float32)
        return np.asarray(self._days @ kernel, np.float32).T

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {**csr_to_arrays("days", self._days), "first_day": np.asarray([self._first_day], np.int64)}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._days = csr_from_arrays("days", arrays)
        self._first_day = int(arrays["first_day"][0])
