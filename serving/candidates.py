"""Candidate lists for one viewer from every generator, with the per-request work done once.

``CandidateGenerator.recommend(user_id, n, history=...)`` is the general
contract, and serving falls back to it for any generator. For the common case
(every built-in model is an ``models.scoring.ItemScorer``) this module keeps
the cost of a cold request down, which the model server pays for every viewer
now that each request carries its own history:

* the history's item indices are looked up once per id mapping, not once per
  generator (the models of one bundle were fitted on the same interactions);
* the fit-time clock (``UserContext.now``, the latest training timestamp) is
  read once at load time, not with a max over all interactions per call;
* a model whose scores do not depend on the viewer (popularity) is ranked once
  at load time; a request only skips the titles it may not get;
* for a restricted viewer (a kids profile) the titles it may not see are masked
  in the score row before the top ``n`` are taken, so each generator proposes
  ``n`` visible titles in one pass instead of ranking several times as many
  and filtering the lists;
* each personal model scores the viewer once (``ItemScorer._score``: one dense
  row over the catalog, the same arithmetic ``recommend`` runs) and the top ``n``
  are taken with one ``argpartition``.

The lists equal ``recommend``'s but for the order of exact score ties at the
cut (``tests/test_serving_candidates.py`` checks the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.base import CandidateGenerator, Recommendation
from models.ids import EmptyHistoryError, IdMapping
from models.scoring import ItemScorer, UserContext

logger = logging.getLogger(__name__)

#: (maturity ceiling, country) → whether a played id may be shown; one mask per id mapping.
Visibility = Callable[[str], bool]


@dataclass
class _Ids:
    """One id mapping shared by several generators, with its visibility masks (computed lazily)."""

    mapping: IdMapping
    masks: dict[tuple[int, str | None], npt.NDArray[np.bool_]] = field(default_factory=dict)

    def mask(self, key: tuple[int, str | None], visible: Visibility) -> npt.NDArray[np.bool_]:
        found = self.masks.get(key)
        if found is None:
            found = self.masks[key] = np.fromiter(
                (visible(i) for i in self.mapping.ids.tolist()), dtype=bool, count=len(self.mapping.ids)
            )
        return found


@dataclass
class _Scorer:
    """One ``ItemScorer`` with what its requests share."""

    model: ItemScorer
    ids: _Ids
    now: int
    #: For a model that scores every viewer alike: its item indices best first, and their scores.
    order: npt.NDArray[np.int64] | None = None
    order_scores: npt.NDArray[np.float64] | None = None
    _visible: dict[tuple[int, str | None], tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )

    def visible_order(
        self, visible: tuple[tuple[int, str | None], npt.NDArray[np.bool_]] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """``order`` and its scores, only finite scores, only what the mask lets through (cached per filter)."""
        assert self.order is not None and self.order_scores is not None
        key = visible[0] if visible is not None else None
        found = self._visible.get(key)  # type: ignore[arg-type]
        if found is None:
            keep = np.isfinite(self.order_scores)
            if visible is not None:
                keep &= visible[1][self.order]
            found = self._visible[key] = (self.order[keep], self.order_scores[keep])  # type: ignore[index]
        return found


class CandidateSources:
    """Every generator of a bundle, asked for one viewer at a time.

    Args:
        generators: role → generator, as the pipeline serves them.
    """

    def __init__(self, generators: dict[str, CandidateGenerator]) -> None:
        self.generators = generators
        self._scorers: dict[str, _Scorer] = {}
        groups: list[_Ids] = []
        for role, generator in generators.items():
            if not isinstance(generator, ItemScorer) or _overrides_recommend(generator):
                continue  # served through its own ``recommend``
            hist = generator.history
            group = next((g for g in groups if _same_ids(g.mapping, hist.items)), None)
            if group is None:
                group = _Ids(hist.items)
                groups.append(group)
            scorer = _Scorer(generator, group, now=int(hist.ts.max()) if len(hist.ts) else 0)
            if not generator.personalised:
                row = generator._score([UserContext(-1, np.zeros(0, np.int64), scorer.now, True)])[0]
                row = row.astype(np.float64)
                scorer.order = np.lexsort((np.arange(len(row)), -row)).astype(np.int64)
                scorer.order_scores = row[scorer.order]
            self._scorers[role] = scorer

    def propose(
        self,
        history: Sequence[str],
        n: int,
        *,
        exclude: Sequence[str] = (),
        filter_seen: bool = True,
        only_visible: tuple[tuple[int, str | None], Visibility] | None = None,
        generic_n: int | None = None,
    ) -> dict[str, Recommendation | EmptyHistoryError]:
        """Each generator's top ``n`` for this history (an ``EmptyHistoryError`` where it knows no title).

        Args:
            history: played ids, oldest first.
            n: proposals per generator.
            exclude: ids never to propose.
            filter_seen: leave the history's own titles out (``rank`` keeps them).
            only_visible: (filter key, may-see rule): propose only ids the rule lets through.
            generic_n: what a generator outside this fast path is asked for (default ``n``); with
                ``only_visible`` its list is then filtered and cut at ``n``.
        """
        looked_up: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
        out: dict[str, Recommendation | EmptyHistoryError] = {}
        for role, generator in self.generators.items():
            scorer = self._scorers.get(role)
            if scorer is None:
                try:
                    rec = generator.recommend(
                        "", generic_n or n, history=list(history), filter_seen=filter_seen, exclude=exclude
                    )
                except EmptyHistoryError as exc:
                    out[role] = exc
                    continue
                if only_visible is not None:
                    visible = only_visible[1]
                    keep = [i for i, played in enumerate(rec.item_ids.tolist()) if visible(played)][:n]
                    rec = Recommendation(item_ids=rec.item_ids[keep], scores=rec.scores[keep])
                out[role] = rec
                continue
            key = id(scorer.ids)
            if key not in looked_up:
                looked_up[key] = (scorer.ids.mapping.known_idx(history), scorer.ids.mapping.known_idx(exclude))
            items, excluded = looked_up[key]
            mask = scorer.ids.mask(*only_visible) if only_visible is not None else None
            if scorer.order is not None:
                masked = (only_visible[0], mask) if only_visible is not None and mask is not None else None
                out[role] = self._static(scorer, items if filter_seen else None, excluded, masked, n)
                continue
            if not len(items):
                out[role] = EmptyHistoryError(f"model {role!r} knows none of the {len(history)} title(s) given")
                continue
            row = scorer.model._score([UserContext(-1, items, scorer.now, True)])[0].astype(np.float64)
            if filter_seen:
                row[items] = -np.inf
            if len(excluded):
                row[excluded] = -np.inf
            if mask is not None:
                row[~mask] = -np.inf
            out[role] = _top(row, n, scorer.ids.mapping)
        return out

    @staticmethod
    def _static(
        scorer: _Scorer,
        seen: npt.NDArray[np.int64] | None,
        excluded: npt.NDArray[np.int64],
        visible: tuple[tuple[int, str | None], npt.NDArray[np.bool_]] | None,
        n: int,
    ) -> Recommendation:
        """The precomputed order (of what this viewer may see), minus its blocked titles, cut at ``n``."""
        order, scores = scorer.visible_order(visible)
        blocked = np.concatenate([excluded, seen]) if seen is not None else excluded
        head = order[: n + len(blocked)]
        keep = np.flatnonzero(~np.isin(head, blocked))[:n] if len(blocked) else np.arange(len(head))[:n]
        return Recommendation(item_ids=scorer.ids.mapping.to_ids(head[keep]), scores=scores[keep].astype(np.float32))


def _top(row: npt.NDArray[np.float64], n: int, mapping: IdMapping) -> Recommendation:
    """The ``n`` best finite entries of ``row``, best first, ties by index."""
    k = min(n, len(row))
    if k == 0:
        return Recommendation(item_ids=mapping.to_ids(np.zeros(0, np.int64)), scores=np.zeros(0, np.float32))
    part = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
    part = part[np.isfinite(row[part])]
    chosen = part[np.lexsort((part, -row[part]))]
    return Recommendation(item_ids=mapping.to_ids(chosen), scores=row[chosen].astype(np.float32))


def _overrides_recommend(model: ItemScorer) -> bool:
    """Whether the model changes how ``ItemScorer`` turns scores into a list (then this path would skip that)."""
    cls = type(model)
    return (
        cls.recommend is not ItemScorer.recommend
        or cls._rank is not ItemScorer._rank
        or cls.context is not ItemScorer.context
    )


def _same_ids(a: IdMapping, b: IdMapping) -> bool:
    return a is b or (len(a.ids) == len(b.ids) and bool(np.array_equal(a.ids, b.ids)))
