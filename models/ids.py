"""The id mapping: external ids (``*_id``, str) ↔ matrix indices (``*_idx``, int).

Kept apart from every model so the mapping is written next to the model and
read back exactly, as LightFM's ``Dataset`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt


class UnknownUserError(KeyError):
    """The user was not seen at fit time and no history was given.

    Serving catches this (it is a ``KeyError``) and falls back to popularity.
    """


class EmptyHistoryError(UnknownUserError):
    """A personalised model was asked about a profile with no usable history (no known title in it).

    A subclass of ``UnknownUserError``, so the same ``except KeyError`` fallback applies.
    """


class UnknownItemError(KeyError):
    """The item was not seen at fit time (``similar_items`` of a title nobody watched)."""


class NotFittedError(RuntimeError):
    """A model was asked for recommendations before ``fit`` or ``load``."""


class IdMapping:
    """An ordered list of external ids; position ``k`` is index ``k``."""

    def __init__(self, ids: Sequence[str] | npt.NDArray[np.str_]) -> None:
        self.ids: npt.NDArray[np.str_] = np.asarray(ids, dtype=np.str_)
        self._index = {str(x): k for k, x in enumerate(self.ids.tolist())}
        if len(self._index) != len(self.ids):
            raise ValueError("ids in an IdMapping must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def idx(self, external_id: str) -> int:
        """Index of one id; ``KeyError`` when unknown."""
        return self._index[external_id]

    def get(self, external_id: str, default: int = -1) -> int:
        """Index of one id, or ``default`` when unknown."""
        return self._index.get(external_id, default)

    def known_idx(self, external_ids: Iterable[str]) -> npt.NDArray[np.int64]:
        """Indices of the known ids among ``external_ids``, order kept, unknown ones skipped."""
        out = [self._index[x] for x in external_ids if x in self._index]
        return np.asarray(out, dtype=np.int64)

    def to_ids(self, idxs: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
        """External ids of ``idxs``."""
        return self.ids[idxs]
