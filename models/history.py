"""Time-ordered user histories built from ``Interactions``, the input every model shares."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.base import Interactions
from models.ids import IdMapping

#: Recent ``Histories.build`` results by the identity of their ``Interactions``: tuning fits
#: many models on one frame, and indexing it again costs about a minute at 20M interactions.
#: An entry goes when its ``Interactions`` is garbage-collected, or when more than
#: ``_BUILT_SIZE`` are held. Histories are never modified after ``build``, so sharing is safe.
_BUILT: dict[int, tuple[tuple[str, ...], Histories, weakref.finalize[[int], Interactions]]] = {}
_BUILT_SIZE = 2


def _forget(key: int) -> None:
    _BUILT.pop(key, None)


def _sort_key(ids: npt.NDArray[np.str_]) -> npt.NDArray[np.float64] | npt.NDArray[np.str_]:
    """Numeric order when every id is one prefix + a number (``"ml-42"``), text order otherwise.

    Watches with the same timestamp are ordered by item id, as in the protocol.
    """
    stripped = np.char.lstrip(ids.astype(np.str_), "".join(chr(c) for c in range(33, 127) if not chr(c).isdigit()))
    prefixes = {s[: len(s) - len(t)] for s, t in zip(ids.tolist(), stripped.tolist(), strict=True)}
    if len(prefixes) == 1 and all(t.isdigit() for t in stripped.tolist()):
        return stripped.astype(np.float64)
    return ids


@dataclass
class Histories:
    """Each user's de-duplicated items, oldest first, in CSR layout.

    Attributes:
        users: user id mapping.
        items: item id mapping (every item seen at fit time).
        indptr: shape (n_users + 1,), int64 — user ``u``'s rows are ``indptr[u]:indptr[u+1]``.
        item_idx: shape (nnz,), int64 — item of each row, oldest first within a user.
        ts: shape (nnz,), int64 — timestamp of each row (seconds).
        weight: shape (nnz,), float32 — confidence of each row.
    """

    users: IdMapping
    items: IdMapping
    indptr: npt.NDArray[np.int64]
    item_idx: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float32]

    @classmethod
    def build(cls, interactions: Interactions, extra_items: Sequence[str] = ()) -> Histories:
        """Index ``interactions``: repeated (user, item) pairs keep the latest time and the top weight.

        ``extra_items`` join the catalog without interactions (cold-start titles known by features).
        The same ``Interactions`` object with the same ``extra_items`` gets the same (shared) result.
        """
        key, extra = id(interactions), tuple(str(x) for x in extra_items)
        cached = _BUILT.get(key)
        if cached is not None and cached[0] == extra:
            return cached[1]
        hist = cls._index(interactions, extra)
        if cached is not None:
            cached[2].detach()
        _BUILT[key] = (extra, hist, weakref.finalize(interactions, _forget, key))
        while len(_BUILT) > _BUILT_SIZE:
            _BUILT.pop(next(iter(_BUILT)))[2].detach()
        return hist

    @classmethod
    def _index(cls, interactions: Interactions, extra_items: Sequence[str]) -> Histories:
        if len(interactions) == 0:
            raise ValueError("cannot fit a model on zero interactions; load or ingest data first")
        all_items = interactions.item_ids.astype(np.str_)
        if len(extra_items):
            all_items = np.concatenate([all_items, np.asarray(list(extra_items), dtype=np.str_)])
        item_ids, all_codes = np.unique(all_items, return_inverse=True)
        item_codes = all_codes[: len(interactions)]
        user_ids, user_codes = np.unique(interactions.user_ids.astype(np.str_), return_inverse=True)
        rank = np.argsort(np.argsort(_sort_key(item_ids), kind="stable"), kind="stable")
        ts = interactions.timestamps.astype(np.int64)
        order = np.lexsort((rank[item_codes], ts, user_codes))
        u, i, t = user_codes[order], item_codes[order], ts[order]
        w = interactions.weights.astype(np.float32)[order]
        key = u.astype(np.int64) * len(item_ids) + i
        uniq, first_rev = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - first_rev)
        top_weight = np.zeros(len(uniq), np.float32)
        np.maximum.at(top_weight, np.searchsorted(uniq, key), w)
        u, i, t = u[keep], i[keep], t[keep]
        w = top_weight[np.searchsorted(uniq, key[keep])]
        indptr = np.zeros(len(user_ids) + 1, np.int64)
        np.add.at(indptr, u + 1, 1)
        return cls(
            users=IdMapping(user_ids),
            items=IdMapping(item_ids),
            indptr=np.cumsum(indptr),
            item_idx=i.astype(np.int64),
            ts=t,
            weight=w.astype(np.float32),
        )

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def user_rows(self, user_idx: int) -> slice:
        """Row slice of one user."""
        return slice(int(self.indptr[user_idx]), int(self.indptr[user_idx + 1]))

    def user_of_row(self) -> npt.NDArray[np.int64]:
        """shape (nnz,): the user index of each row."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """Arrays to save (npz, no pickle)."""
        return {
            "user_ids": self.users.ids,
            "item_ids": self.items.ids,
            "indptr": self.indptr,
            "item_idx": self.item_idx,
            "ts": self.ts,
            "weight": self.weight,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> Histories:
        """Inverse of ``arrays``."""
        return cls(
            users=IdMapping(arrays["user_ids"].astype(np.str_)),
            items=IdMapping(arrays["item_ids"].astype(np.str_)),
            indptr=arrays["indptr"].astype(np.int64),
            item_idx=arrays["item_idx"].astype(np.int64),
            ts=arrays["ts"].astype(np.int64),
            weight=arrays["weight"].astype(np.float32),
        )
