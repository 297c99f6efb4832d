"""The model contract shared by every Marquee model.

Two roles, kept apart as in two-stage recommenders:

* ``CandidateGenerator`` turns a user's history into a scored list of items
  (``fit`` / ``recommend`` / ``recommend_batch`` / ``similar_items`` / ``save`` / ``load``).
* ``Ranker`` re-scores a given candidate list (``fit`` / ``score``).

External ids (``user_id``, ``item_id``: ``str``) and internal indices
(``user_idx``, ``item_idx``: ``int``) never mix: the public methods take and
return external ids, and each model saves its ``IdMapping`` with itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Interactions:
    """Training interactions in external ids, one row per (user, item) event.

    Attributes:
        user_ids: shape (n,), str — the profile of each interaction.
        item_ids: shape (n,), str — the title of each interaction.
        timestamps: shape (n,), int64 seconds since the epoch.
        weights: shape (n,), float32 — confidence (watch progress, completion, rating).
    """

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    timestamps: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        n = len(self.user_ids)
        if not (len(self.item_ids) == len(self.timestamps) == len(self.weights) == n):
            raise ValueError("user_ids, item_ids, timestamps and weights must have the same length")

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class Recommendation:
    """Ranked items for one user: ``item_ids`` shape (k,), str; ``scores`` shape (k,), float32, descending."""

    item_ids: npt.NDArray[np.str_]
    scores: npt.NDArray[np.float32]


class CandidateGenerator(ABC):
    """A model that proposes items for a user from that user's history."""

    #: Registry name, e.g. ``"als"``; used by ``marquee train --models``.
    name: ClassVar[str]
    #: Candidate values per constructor param, searched on validation (``training.tuning``); empty: none.
    tuning_space: ClassVar[dict[str, list[Any]]] = {}
    #: Order in which serving asks models for "similar titles" (lower first); unrated models go last.
    similar_priority: ClassVar[int] = 1000
    #: True for a model built from other registered models (``models.blend``): evaluated after them,
    #: with their tuned params passed in as ``member_params``.
    blends_members: ClassVar[bool] = False

    @abstractmethod
    def fit(self, interactions: Interactions, **context: Any) -> CandidateGenerator:
        """Learn from ``interactions``; ``context`` carries optional side data (item/user features)."""

    @abstractmethod
    def recommend(
        self,
        user_id: str,
        n: int = 10,
        *,
        history: Sequence[str] | None = None,
        filter_seen: bool = True,
        exclude: Sequence[str] = (),
    ) -> Recommendation:
        """Top ``n`` items for ``user_id``.

        ``history`` (item ids, oldest first) overrides the history seen at fit time, so
        a profile's newest watches count without refitting. ``n`` larger than the
        catalog returns the whole catalog.
        """

    def recommend_batch(
        self, user_ids: Sequence[str], n: int = 10, *, filter_seen: bool = True
    ) -> list[Recommendation]:
        """``recommend`` for many users; must equal calling ``recommend`` one by one."""
        return [self.recommend(u, n, filter_seen=filter_seen) for u in user_ids]

    @abstractmethod
    def similar_items(self, item_id: str, n: int = 10) -> Recommendation:
        """Items most similar to ``item_id`` (the item itself excluded)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the model and its id mapping under folder ``path`` (no pickle of code)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> CandidateGenerator:
        """Read a model written by ``save``."""


class Ranker(ABC):
    """A second-stage model that scores candidate items for a user."""

    name: ClassVar[str]

    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> Ranker:
        """Learn from labelled (user, candidate) examples."""

    @abstractmethod
    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Scores for candidate rows: ``features`` shape (n, d) float32 → shape (n,) float32."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the ranker under folder ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Ranker:
        """Read a ranker written by ``save``."""
