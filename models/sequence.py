"""``SequenceKNN``: Marquee's best candidate generator — what profiles watch *next*.

Under the temporal protocol (and in serving) the question is what a profile
watches after its latest watches, so order matters more than the whole
history. Three item-based components, each scaled to [0, 1] per user and added
with weights tuned on the validation split:

1. **Transitions** ``T[i, j]``: how often ``j`` was watched within ``window``
   positions *after* ``i`` (each step further counts ``step_decay`` less);
   the profile's last ``seq_len`` watches vote with recency weights.
2. **Item-kNN**: cosine co-watch neighbours over the recency-weighted history
   (what a profile likes overall).
3. **Time-aware popularity** (optional): items watched by others around the
   profile's "now" (its latest watch), with a ``time_tau_days`` kernel —
   candidates that know the time.

Cost: transitions O(interactions × window) to build (one step at a time) and
memory for their distinct (item, next item) pairs; kNN one sparse ``XᵀX`` pruned
block by block; no items³ step, so it scales past where EASE stops. Serving
passes ``history`` so new watches count without refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.history import Histories
from models.item_knn import cosine_neighbours
from models.scoring import (
    ItemScorer,
    UserContext,
    neighbour_row,
    recency_weights,
    sparse_user_matrix,
    weighted_rows,
)
from models.sparse_io import csr_from_arrays, csr_to_arrays, row_minmax

DAY = 86_400
#: Clocks (days) whose time scores ``_time_row`` remembers.
TIME_ROWS = 4


def transition_matrix(hist: Histories, window: int, step_decay: float) -> sp.csr_matrix:
    """Items × items: weight of ``j`` following ``i`` within ``window`` steps in one profile's history.

    Built one step at a time (each step's pairs summed into the running matrix), so memory
    is the distinct (i, j) pairs, not ``interactions × window`` coordinates at once.
    """
    users = hist.user_of_row()
    nnz = len(hist.item_idx)
    index = np.int32 if hist.n_items < np.iinfo(np.int32).max else np.int64
    items = hist.item_idx.astype(index)
    trans = sp.csr_matrix((hist.n_items, hist.n_items), dtype=np.float32)
    for step in range(1, window + 1):
        if step >= nnz:
            break
        same = users[:-step] == users[step:]
        if not same.any():
            break  # no history is longer than this step, so none is longer than the next
        pairs = sp.csr_matrix(
            (np.full(int(same.sum()), step_decay ** (step - 1), np.float32), (items[:-step][same], items[step:][same])),
            shape=(hist.n_items, hist.n_items),
            dtype=np.float32,
        )
        trans = trans + pairs
    return sp.csr_matrix(trans, dtype=np.float32)


def day_histogram(hist: Histories) -> tuple[sp.csr_matrix, int]:
    """Items × days watch counts, and the first day (days since the epoch)."""
    day = hist.ts // DAY
    first = int(day.min())
    n_days = int(day.max()) - first + 1
    counts = sp.csr_matrix(
        (np.ones(len(day), np.float32), (hist.item_idx, day - first)), shape=(hist.n_items, n_days), dtype=np.float32
    )
    return counts, first


class SequenceKNN(ItemScorer):
    """Transitions + item-kNN + time-aware popularity; see the module docstring.

    Args:
        window: how many later watches count as following a watch.
        step_decay: weight of each further step (1.0: all steps in the window count the same).
        seq_len: how many of the profile's latest watches vote for what comes next.
        seq_half_life: recency half-life (positions) of those votes.
        neighbours: item-kNN neighbours kept per item.
        knn_half_life: recency half-life of the kNN history.
        knn_weight: weight of the kNN component (transitions weigh 1).
        time_weight: weight of time-aware popularity (0 turns it off).
        time_tau_days: width of the time kernel around the profile's latest watch.
    """

    name: ClassVar[str] = "seqknn"
    tuning_space: ClassVar[dict[str, list[Any]]] = {
        "seq_half_life": [2.0, 4.0, 8.0],
        "step_decay": [0.9, 0.95],
        "knn_weight": [0.25, 0.5, 1.0],
        "neighbours": [200, 1000],
        "knn_half_life": [3.0, 5.0],
        "time_weight": [0.0, 0.1, 0.25],
        "time_tau_days": [7.0, 30.0, 180.0],
    }
    similar_priority: ClassVar[int] = 20
    neighbour_matrices: ClassVar[tuple[str, ...]] = ("_sim",)

    def __init__(
        self,
        window: int = 20,
        step_decay: float = 0.95,
        seq_len: int = 20,
        seq_half_life: float = 2.0,
        neighbours: int = 200,
        knn_half_life: float = 3.0,
        knn_weight: float = 1.0,
        time_weight: float = 0.0,
        time_tau_days: float = 30.0,
        reverse_weight: float = 0.0,
        pop_exponent: float = 0.0,
        row_exponent: float = 0.0,
    ) -> None:
        super().__init__(
            window=window,
            step_decay=step_decay,
            seq_len=seq_len,
            seq_half_life=seq_half_life,
            neighbours=neighbours,
            knn_half_life=knn_half_life,
            knn_weight=knn_weight,
            time_weight=time_weight,
            time_tau_days=time_tau_days,
            reverse_weight=reverse_weight,
            pop_exponent=pop_exponent,
            row_exponent=row_exponent,
        )
        self.window = int(window)
        self.step_decay = float(step_decay)
        self.seq_len = int(seq_len)
        self.seq_half_life = float(seq_half_life)
        self.neighbours = int(neighbours)
        self.knn_half_life = float(knn_half_life)
        self.knn_weight = float(knn_weight)
        self.time_weight = float(time_weight)
        self.time_tau_days = float(time_tau_days)
        self.reverse_weight = float(reverse_weight)
        self.pop_exponent = float(pop_exponent)
        self.row_exponent = float(row_exponent)
        self._trans = sp.csr_matrix((0, 0), dtype=np.float32)
        self._sim = sp.csr_matrix((0, 0), dtype=np.float32)
        self._days = sp.csr_matrix((0, 0), dtype=np.float32)
        self._first_day = 0
        #: ``_time_row``'s memory: day of the clock → the user-independent time scores (cleared on fit and load).
        self._time_rows: dict[int, npt.NDArray[np.float32]] = {}

    def _fit(self, hist: Histories, **context: Any) -> None:
        trans = transition_matrix(hist, self.window, self.step_decay)
        if self.reverse_weight > 0:
            trans = trans + self.reverse_weight * trans.T
        if self.pop_exponent > 0:
            pop = np.maximum(np.bincount(hist.item_idx, minlength=hist.n_items), 1).astype(np.float32)
            trans = trans @ sp.diags(pop**-self.pop_exponent)
        if self.row_exponent > 0:
            rows = np.maximum(np.asarray(trans.sum(axis=1)).ravel(), 1e-6)
            trans = sp.diags(rows**-self.row_exponent) @ trans
        self._trans = sp.csr_matrix(trans, dtype=np.float32)
        self._sim = (
            cosine_neighbours(hist, self.neighbours)
            if self.knn_weight > 0
            else sp.csr_matrix((hist.n_items, hist.n_items), dtype=np.float32)
        )
        self._days, self._first_day = day_histogram(hist)
        self._time_rows = {}

    def _sequence_votes(self, users: Sequence[UserContext]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for k, ctx in enumerate(users):
            recent = ctx.items[-self.seq_len :]
            rows.append(np.full(len(recent), k))
            cols.append(recent)
            vals.append(recency_weights(len(recent), self.seq_half_life))
        if not rows:
            return sp.csr_matrix((len(users), self.history.n_items), dtype=np.float32)
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(users), self.history.n_items),
            dtype=np.float32,
        )

    def _time_scores(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        n_days = self._days.shape[1]
        now = np.array([ctx.now // DAY - self._first_day for ctx in users], np.float64)
        gap = np.abs(np.arange(n_days, dtype=np.float64)[:, None] - now[None, :])
        kernel = np.exp(-gap / max(self.time_tau_days, 1e-6)).astype(np.float32)
        return np.asarray(self._days @ kernel, np.float32).T

    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        if len(users) == 1:
            return self._score_one(users[0])[None, :]
        seq = np.asarray((self._sequence_votes(users) @ self._trans).todense(), np.float32)
        scores = row_minmax(seq)
        if self.knn_weight > 0:
            U = sparse_user_matrix(users, self.history.n_items, self.knn_half_life)
            scores += self.knn_weight * row_minmax(np.asarray((U @ self._sim).todense(), np.float32))
        if self.time_weight > 0:
            scores += self.time_weight * row_minmax(self._time_scores(users))
        return scores

    def _score_one(self, ctx: UserContext) -> npt.NDArray[np.float32]:
        """``_score`` of one user, the serving case: the same sums without one-row sparse matrices.

        The time component depends only on the user's clock, which serving sets to the
        fit-time clock for every viewer: it is computed once per clock and reused.
        """
        recent = ctx.items[-self.seq_len :]
        seq = weighted_rows(self._trans, recent, recency_weights(len(recent), self.seq_half_life))
        scores = row_minmax(seq[None, :])[0]
        if self.knn_weight > 0:
            near = neighbour_row(self._sim, ctx, self.knn_half_life)
            scores += self.knn_weight * row_minmax(near[None, :])[0]
        if self.time_weight > 0:
            scores += self.time_weight * self._time_row(ctx)
        return scores

    def _time_row(self, ctx: UserContext) -> npt.NDArray[np.float32]:
        """``row_minmax(_time_scores)`` of one user, remembered for the latest few clocks (a day's resolution)."""
        key = ctx.now // DAY
        cache = self._time_rows
        row = cache.get(key)
        if row is None:
            row = row_minmax(self._time_scores([ctx]))[0]
            row.setflags(write=False)
            if len(cache) >= TIME_ROWS:
                cache.pop(next(iter(cache)))
            cache[key] = row
        return row

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        after = np.asarray(self._trans[item_idx].todense(), np.float32)
        near = np.asarray(self._sim[item_idx].todense(), np.float32)
        return (row_minmax(after) + self.knn_weight * row_minmax(near)).ravel()

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            **csr_to_arrays("trans", self._trans),
            **csr_to_arrays("sim", self._sim),
            **csr_to_arrays("days", self._days),
            "first_day": np.asarray([self._first_day], np.int64),
        }

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self._trans = csr_from_arrays("trans", arrays)
        self._sim = csr_from_arrays("sim", arrays)
        self._days = csr_from_arrays("days", arrays)
        self._first_day = int(arrays["first_day"][0])
        self._time_rows = {}
