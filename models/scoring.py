"""``ItemScorer``: the shared machinery of models that score the whole catalog from a history.

A subclass only learns its parameters (``_fit``) and scores a batch of users
(``_score``). This base does the rest the same way for every model, so the
contract holds by construction: the id mapping, history overrides, seen-item
filtering, ``n`` larger than the catalog, deterministic tie-breaking (by item
index), batch equal to single calls, and the npz + json save format.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.base import CandidateGenerator, Interactions, Recommendation
from models.history import Histories
from models.ids import EmptyHistoryError, NotFittedError, UnknownItemError, UnknownUserError

logger = logging.getLogger(__name__)

SAVE_FORMAT = 1
_BATCH = 256


@dataclass(frozen=True)
class UserContext:
    """What a model knows about one user when scoring.

    Attributes:
        user_idx: index at fit time, or -1 for a user known only by ``history``.
        items: shape (h,), int64 — history item indices, oldest first.
        now: the user's current time in seconds (latest watch), for time-aware scores.
        from_history: True when ``items`` came from a ``history=`` override rather than fit time.
        shared: rows already computed for this user during one request, for the models of one
            bundle to share (``neighbour_row``); ``None``: nothing is shared.
    """

    user_idx: int
    items: npt.NDArray[np.int64]
    now: int
    from_history: bool = False
    shared: dict[object, npt.NDArray[np.float32]] | None = field(default=None, compare=False, repr=False)


class ItemScorer(CandidateGenerator):
    """Base of every Marquee candidate generator that scores all items for a user."""

    name: ClassVar[str] = "item_scorer"
    #: Whether scores depend on the user's history (False for popularity, which serves anyone).
    personalised: ClassVar[bool] = True
    #: Attributes holding CSR neighbour matrices that another model of a bundle may hold equal
    #: copies of (``share_equal_matrices``); they are never written after fitting.
    neighbour_matrices: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self._hist: Histories | None = None

    # -- what subclasses provide -------------------------------------------------------------
    @classmethod
    def check_catalog(cls, n_items: int) -> None:
        """Raise before any work when this model cannot fit ``n_items`` items here (default: any size does)."""
        del n_items

    @abstractmethod
    def _fit(self, hist: Histories, **context: Any) -> None:
        """Learn parameters from the indexed histories."""

    @abstractmethod
    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        """Scores shape (len(users), n_items), float32; higher is better."""

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        """Similarity of every item to ``item_idx``, shape (n_items,); default: co-watch counts."""
        hist = self.history
        users = hist.user_of_row()[hist.item_idx == item_idx]
        mask = np.isin(hist.user_of_row(), users)
        counts = np.bincount(hist.item_idx[mask], minlength=hist.n_items).astype(np.float32)
        return counts

    def _state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Learned arrays to save (npz)."""
        return {}

    def _load_state(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        """Restore what ``_state`` returned."""
        del arrays

    # -- the contract ------------------------------------------------------------------------
    def fit(self, interactions: Interactions, **context: Any) -> ItemScorer:
        """Index ``interactions`` (id mapping and time-ordered histories), then learn."""
        item_features = context.get("item_features") or {}
        self._hist = Histories.build(interactions, extra_items=list(item_features))
        logger.info(
            "fitting %s on %d users, %d items, %d interactions",
            self.name,
            self._hist.n_users,
            self._hist.n_items,
            len(self._hist.item_idx),
        )
        self._fit(self._hist, **context)
        return self

    @property
    def history(self) -> Histories:
        """The fit-time histories and id mappings; ``NotFittedError`` before ``fit``/``load``."""
        if self._hist is None:
            raise NotFittedError(f"model {self.name!r} is not fitted: call fit() or load() first")
        return self._hist

    @property
    def item_ids(self) -> npt.NDArray[np.str_]:
        """The catalog this model can recommend, in index order."""
        return self.history.items.ids

    def context(self, user_id: str, history: Sequence[str] | None = None) -> UserContext:
        """Build the scoring context of one user; ``UnknownUserError`` when nothing is known."""
        hist = self.history
        user_idx = hist.users.get(user_id)
        if history is not None:
            items = hist.items.known_idx(history)
            if self.personalised and user_idx < 0 and not len(items):
                raise EmptyHistoryError(
                    f"user {user_id!r} has no history that model {self.name!r} knows "
                    f"({len(history)} title(s) given, none seen at fit time); fall back to popularity"
                )
            known = user_idx >= 0 and hist.indptr[user_idx + 1] > hist.indptr[user_idx]
            now = int(hist.ts[hist.user_rows(user_idx)].max()) if known else int(hist.ts.max())
            return UserContext(user_idx=user_idx, items=items, now=now, from_history=True)
        if user_idx < 0:
            raise UnknownUserError(
                f"user {user_id!r} was not seen when model {self.name!r} was fitted; "
                "pass history=[...] or fall back to popularity"
            )
        rows = hist.user_rows(user_idx)
        return UserContext(user_idx=user_idx, items=hist.item_idx[rows], now=int(hist.ts[rows][-1]))

    def recommend(
        self,
        user_id: str,
        n: int = 10,
        *,
        history: Sequence[str] | None = None,
        filter_seen: bool = True,
        exclude: Sequence[str] = (),
    ) -> Recommendation:
        """Top ``n`` items for ``user_id``; see ``CandidateGenerator.recommend``.

        Raises:
            UnknownUserError: the user was not seen at fit time and ``history`` is None.
            ValueError: ``n`` < 1.
        """
        ctx = self.context(user_id, history)
        return self._rank([ctx], n, filter_seen=filter_seen, exclude=exclude)[0]

    def recommend_batch(
        self, user_ids: Sequence[str], n: int = 10, *, filter_seen: bool = True
    ) -> list[Recommendation]:
        """``recommend`` for many users at once (vectorised in chunks; equal to single calls)."""
        contexts = [self.context(u) for u in user_ids]
        out: list[Recommendation] = []
        for start in range(0, len(contexts), _BATCH):
            out.extend(self._rank(contexts[start : start + _BATCH], n, filter_seen=filter_seen))
        return out

    def _rank(
        self, contexts: Sequence[UserContext], n: int, *, filter_seen: bool, exclude: Sequence[str] = ()
    ) -> list[Recommendation]:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        hist = self.history
        out: list[Recommendation] = []
        scores = self._score(contexts) if contexts else np.zeros((0, hist.n_items), np.float32)
        excluded = hist.items.known_idx(exclude)
        for row, ctx in zip(scores.astype(np.float64), contexts, strict=True):
            if filter_seen and len(ctx.items):
                row[ctx.items] = -np.inf
            if len(excluded):
                row[excluded] = -np.inf
            out.append(self._top(row, n))
        return out

    def _top(self, row: npt.NDArray[np.float64], n: int) -> Recommendation:
        """Top ``n`` finite entries of ``row``, ties broken by item index."""
        chosen, scores = self._top_indices(row, n)
        return Recommendation(item_ids=self.history.items.to_ids(chosen), scores=scores)

    @staticmethod
    def _top_indices(row: npt.NDArray[np.float64], n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``_top`` as item indices and float32 scores.

        Only the entries above the cut are sorted; the entries tied at the cut follow in
        index order (``flatnonzero`` gives them so), which is where a sort by (score
        descending, index) puts them. A similarity row is mostly zeros: when the cut
        falls on 0, sorting every zero by index cost ~1 ms per list, this costs none.
        """
        candidates = np.flatnonzero(np.isfinite(row))
        k = min(n, len(candidates))
        values = row[candidates]
        if k < len(candidates):
            part = np.argpartition(-values, k - 1)[:k]
            threshold = values[part].min()
            above = candidates[values > threshold]
            tied = candidates[values == threshold]
            above = above[np.lexsort((above, -row[above]))]
            chosen = np.concatenate([above, tied[: k - len(above)]])
        else:
            chosen = candidates[np.lexsort((candidates, -values))]
        return chosen.astype(np.int64, copy=False), row[chosen].astype(np.float32)

    def similar_items(self, item_id: str, n: int = 10) -> Recommendation:
        """Items most similar to ``item_id`` ("Because you watched X"); the item itself excluded.

        Raises:
            UnknownItemError: ``item_id`` was not seen at fit time.
        """
        chosen, scores = self.similar_indices(item_id, n)
        return Recommendation(item_ids=self.history.items.to_ids(chosen), scores=scores)

    def similar_indices(self, item_id: str, n: int = 10) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``similar_items`` as item indices (``history.items``) and scores, for callers that stay in numpy.

        Raises:
            UnknownItemError: ``item_id`` was not seen at fit time.
        """
        item_idx = self._fitted_item(item_id)
        row = self._similar(item_idx).astype(np.float64)
        row[item_idx] = -np.inf
        return self._top_indices(row, n)

    def _fitted_item(self, item_id: str) -> int:
        """The index of an item seen at fit time; ``UnknownItemError`` for any other."""
        item_idx = self.history.items.get(item_id)
        if item_idx < 0:
            raise UnknownItemError(f"item {item_id!r} was not seen when model {self.name!r} was fitted")
        return item_idx

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write ``model.json`` (name, params), ``ids.npz`` (id mapping + histories), ``state.npz``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "ids.npz", **self.history.arrays())  # type: ignore[arg-type]
        np.savez(path / "state.npz", **self._state())  # type: ignore[arg-type]
        meta = {"format": SAVE_FORMAT, "model": self.name, "params": self.params}
        (path / "model.json").write_text(json.dumps(meta, indent=2, default=float))

    @classmethod
    def load(cls, path: Path) -> ItemScorer:
        """Read a model written by ``save`` (no pickle)."""
        path = Path(path)
        meta_path = path / "model.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"no model.json under {path}: not a saved Marquee model")
        meta = json.loads(meta_path.read_text())
        if meta.get("model") != cls.name:
            raise ValueError(f"{path} holds model {meta.get('model')!r}, not {cls.name!r}")
        model = cls(**meta["params"])
        with np.load(path / "ids.npz", allow_pickle=False) as ids:
            model._hist = Histories.from_arrays({k: ids[k] for k in ids.files})
        with np.load(path / "state.npz", allow_pickle=False) as state:
            model._load_state({k: state[k] for k in state.files})
        return model


def column_major(factors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Item factors (items × dims, float32) stored column by column, the layout scoring reads fastest.

    Scoring a viewer is one product with every item's factors, ``u @ items.T``. With
    the factors stored row by row, ``items.T`` hands OpenBLAS a transposed matrix and
    it takes its dot-product kernel (23,753 × 64: ~0.4–0.5 ms a viewer here); stored by
    columns, ``items.T`` is a plain row-major matrix and its axpy kernel does the same
    product in ~0.2 ms. Same values, same shape, only the memory order differs; the
    sums are taken in another order, so a score can move in its last bit (the
    ranking test in ``tests/test_models_factor_layout.py`` bounds what that changes).
    Gathering a few rows (fold-in) wants the row-major layout: callers that do that
    keep their own C-ordered copy (``np.ascontiguousarray``).
    """
    return np.asfortranarray(np.asarray(factors, dtype=np.float32))


def recency_weights(n: int, half_life: float | None) -> npt.NDArray[np.float32]:
    """``0.5 ** (position from the latest / half_life)`` for a history of length ``n`` (oldest first).

    ``half_life`` None or 0 gives equal weights (plain, order-free models).
    """
    if not half_life:
        return np.ones(n, np.float32)
    pos = np.arange(n - 1, -1, -1, dtype=np.float64)
    return (0.5 ** (pos / half_life)).astype(np.float32)


def user_matrix(contexts: Sequence[UserContext], n_items: int, half_life: float | None) -> npt.NDArray[np.float32]:
    """Dense recency-weighted user rows, shape (len(contexts), n_items)."""
    out = np.zeros((len(contexts), n_items), np.float32)
    for k, ctx in enumerate(contexts):
        if len(ctx.items):
            out[k, ctx.items] = recency_weights(len(ctx.items), half_life)
    return out


def user_weights(ctx: UserContext, half_life: float | None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """One user's row of ``sparse_user_matrix``: (item indices, sorted; their recency weights).

    A title repeated in a ``history=`` override keeps its latest weight; far-back
    watches whose weight underflowed to 0 are left out.
    """
    weights = recency_weights(len(ctx.items), half_life)
    # The last occurrence of each item (np.unique sorts, so columns come out sorted).
    items, first_from_end = np.unique(ctx.items[::-1], return_index=True)
    values = weights[::-1][first_from_end]
    kept = values > 0
    return items[kept].astype(np.int64), values[kept]


def sparse_user_matrix(contexts: Sequence[UserContext], n_items: int, half_life: float | None) -> sp.csr_matrix:
    """``user_matrix`` as CSR (sorted columns): the same rows without the dense (users × items) array.

    ``sparse @ item-item matrix`` costs O(history × items) per user instead of
    O(items²), which matters once the catalog has tens of thousands of titles.
    A title repeated in a ``history=`` override keeps its latest weight, as in ``user_matrix``.
    """
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float32]] = []
    indptr = np.zeros(len(contexts) + 1, np.int64)
    for k, ctx in enumerate(contexts):
        items, values = user_weights(ctx, half_life)
        cols.append(items)
        vals.append(values)
        indptr[k + 1] = indptr[k] + len(items)
    if not indptr[-1]:
        return sp.csr_matrix((len(contexts), n_items), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), np.concatenate(cols), indptr), shape=(len(contexts), n_items))


def neighbour_row(matrix: sp.csr_matrix, ctx: UserContext, half_life: float | None) -> npt.NDArray[np.float32]:
    """``weighted_rows(matrix, *user_weights(ctx, half_life))``: a user's recency-weighted sum of neighbour rows.

    Item-kNN's score and seqknn's kNN part are this same row when the two models hold
    equal neighbour matrices (``share_equal_matrices`` makes them one object at load):
    with ``ctx.shared`` the row is computed once per request and read by both (read-only).
    """
    shared = ctx.shared
    if shared is None:
        return weighted_rows(matrix, *user_weights(ctx, half_life))
    key = (id(matrix), id(ctx.items), half_life)  # both are alive for as long as the request's context
    row = shared.get(key)
    if row is None:
        row = weighted_rows(matrix, *user_weights(ctx, half_life))
        row.setflags(write=False)
        shared[key] = row
    return row


def share_equal_matrices(models: Iterable[object]) -> int:
    """Point the models' equal neighbour matrices (``ItemScorer.neighbour_matrices``) at one copy; how many were shared.

    A bundle's item-kNN and seqknn fit the same cosine neighbours on the same
    interactions: two equal ~3.7M-entry matrices per loaded version. One copy halves
    that memory, and lets ``neighbour_row`` compute their common row once per request.
    """
    seen: list[sp.csr_matrix] = []
    shared = 0
    for model in models:
        for name in getattr(model, "neighbour_matrices", ()):
            matrix = getattr(model, name, None)
            if not isinstance(matrix, sp.csr_matrix):
                continue
            twin = next((m for m in seen if _equal_csr(m, matrix)), None)
            if twin is None:
                seen.append(matrix)
            elif twin is not matrix:
                setattr(model, name, twin)
                shared += 1
    return shared


def _equal_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.nnz == b.nnz
        and bool(np.array_equal(a.indptr, b.indptr))
        and bool(np.array_equal(a.indices, b.indices))
        and bool(np.array_equal(a.data, b.data))
    )


def weighted_rows(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64], weights: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.float32]:
    """``Σ_j weights[j] · matrix[rows[j]]`` as a dense float32 row: one user's ``sparse user row @ matrix``.

    Serving scores one viewer per request, and scipy spent more time constructing
    and checking its one-row operands than on the arithmetic. This runs the same
    float32 products and sums in the same order as scipy's CSR product of a row with
    sorted columns (rows ascending, each row's stored entries in order), so the
    result is bitwise the same: the tie order at a candidate list's cut never moves.
    Repeated rows are summed first, as building the CSR row does.
    """
    rows = np.asarray(rows, np.int64)
    values = np.asarray(weights, np.float32)
    if len(rows) > 1 and not bool(np.all(rows[1:] > rows[:-1])):
        order = np.argsort(rows, kind="stable")
        rows, values = rows[order], values[order]
        unique, starts = np.unique(rows, return_index=True)
        if len(unique) < len(rows):
            values = np.add.reduceat(values, starts).astype(np.float32)
            rows = unique
    out = np.zeros(matrix.shape[1], np.float32)
    indptr = matrix.indptr
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return out
    # Positions of every stored entry of the chosen rows, in one vector (row by row).
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    products = matrix.data[offsets].astype(np.float32, copy=False) * np.repeat(values, lengths)
    np.add.at(out, matrix.indices[offsets], products)
    return out
