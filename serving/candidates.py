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
  are taken from a few hundred entries above a bound (``_unique_head``), the whole
  row partitioned only when ties at the cut leave a choice.

The lists equal ``recommend``'s but for the order of exact score ties at the
cut (``tests/test_serving_candidates.py`` checks the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from models.base import CandidateGenerator, Recommendation
from models.ids import EmptyHistoryError, IdMapping
from models.scoring import ItemScorer, UserContext

logger = logging.getLogger(__name__)

#: (maturity ceiling, country) → whether a played id may be shown; one mask per id mapping.
Visibility = Callable[[str], bool]


class VisibleOnly(NamedTuple):
    """What a restricted viewer may be proposed: a filter key and its rule, per id and per mapping.

    Attributes:
        key: the filter's identity, (maturity ceiling, country): masks are kept per key.
        allows: whether one played id may be shown.
        mask_of: ``allows`` of every id of a mapping at once, in the mapping's order, when the
            caller can compute it without a call per id (the pipeline gathers its per-title
            flags: ~0.1 ms instead of ~10 ms per new key and mapping); ``None``: ``allows`` per id.
    """

    key: tuple[int, str | None]
    allows: Visibility
    mask_of: Callable[[IdMapping], npt.NDArray[np.bool_]] | None = None


@dataclass
class _Ids:
    """One id mapping shared by several generators, with its visibility masks (computed lazily)."""

    mapping: IdMapping
    masks: dict[tuple[int, str | None], npt.NDArray[np.bool_]] = field(default_factory=dict)
    hidden_masks: dict[tuple[int, str | None], npt.NDArray[np.bool_]] = field(default_factory=dict)

    def mask(self, only: VisibleOnly) -> npt.NDArray[np.bool_]:
        found = self.masks.get(only.key)
        if found is None:
            if only.mask_of is not None:
                found = np.asarray(only.mask_of(self.mapping), dtype=bool)
            else:
                found = np.fromiter(
                    (only.allows(i) for i in self.mapping.ids.tolist()), dtype=bool, count=len(self.mapping.ids)
                )
            self.masks[only.key] = found
        return found

    def hidden(self, only: VisibleOnly) -> npt.NDArray[np.bool_]:
        """``~mask(only)``, kept per key too: a restricted viewer's score rows are masked with it per
        generator and page, and inverting ~24,000 flags each time cost as much as the masking."""
        found = self.hidden_masks.get(only.key)
        if found is None:
            found = self.hidden_masks[only.key] = ~self.mask(only)
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
        only_visible: VisibleOnly | None = None,
        generic_n: int | None = None,
        seen: Sequence[str] | None = None,
    ) -> dict[str, Recommendation | EmptyHistoryError]:
        """Each generator's top ``n`` for this history (an ``EmptyHistoryError`` where it knows no title).

        Args:
            history: played ids, oldest first.
            n: proposals per generator.
            exclude: ids never to propose.
            filter_seen: leave the history's own titles out (``rank`` keeps them).
            only_visible: the filter: propose only ids it lets through.
            generic_n: what a generator outside this fast path is asked for (default ``n``); with
                ``only_visible`` its list is then filtered and cut at ``n``.
            seen: what ``filter_seen`` leaves out (default: ``history``): a history read through
                stand-ins the viewer never watched names them in ``history`` but not here. A
                generator outside this fast path leaves out its whole ``history``.
        """
        looked_up: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
        out: dict[str, Recommendation | EmptyHistoryError] = {}
        shared: dict[object, npt.NDArray[np.float32]] = {}  # rows the generators share (``neighbour_row``)
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
                    visible = only_visible.allows
                    keep = [i for i, played in enumerate(rec.item_ids.tolist()) if visible(played)][:n]
                    rec = Recommendation(item_ids=rec.item_ids[keep], scores=rec.scores[keep])
                out[role] = rec
                continue
            key = id(scorer.ids)
            if key not in looked_up:
                mapping = scorer.ids.mapping
                known = mapping.known_idx(history)
                looked_up[key] = (known, known if seen is None else mapping.known_idx(seen), mapping.known_idx(exclude))
            items, watched, excluded = looked_up[key]
            mask = scorer.ids.mask(only_visible) if only_visible is not None else None
            if scorer.order is not None:
                masked = (only_visible.key, mask) if only_visible is not None and mask is not None else None
                out[role] = self._static(scorer, watched if filter_seen else None, excluded, masked, n)
                continue
            if not len(items):
                out[role] = EmptyHistoryError(f"model {role!r} knows none of the {len(history)} title(s) given")
                continue
            # float32 as the model scored it: a float64 copy ranks the same (every float32 is exact
            # in float64) and costs one more pass over ~24,000 entries per generator.
            row = np.array(scorer.model._score([UserContext(-1, items, scorer.now, True, shared)])[0], np.float32)
            if filter_seen:
                row[watched] = -np.inf
            if len(excluded):
                row[excluded] = -np.inf
            if only_visible is not None:
                np.copyto(row, -np.inf, where=scorer.ids.hidden(only_visible))
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
        if len(blocked):
            keep = np.flatnonzero(~marked(blocked, len(scorer.ids.mapping))[head])[:n]
        else:
            keep = np.arange(len(head))[:n]
        return Recommendation(item_ids=scorer.ids.mapping.to_ids(head[keep]), scores=scores[keep].astype(np.float32))


def marked(indices: Sequence[int] | npt.NDArray[np.integer], size: int) -> npt.NDArray[np.bool_]:
    """``size`` flags, True at ``indices``: membership tests as one gather (``np.isin`` sorts both sides per call)."""
    flags = np.zeros(size, bool)
    flags[indices] = True
    return flags


def first_occurrences(values: npt.NDArray[np.integer], size: int) -> npt.NDArray[np.int64]:
    """Positions in ``values`` (each in ``[0, size)``) where a value occurs for the first time, ascending.

    What ``np.sort(np.unique(values, return_index=True)[1])`` gives, without sorting
    ``values``: a "similar" list of a few thousand played ids per restricted viewer
    spent most of its filtering in that sort. One scatter of each value's first
    position, one comparison.
    """
    where = np.arange(len(values), dtype=np.int64)
    first = np.full(size, len(values), np.int64)
    np.minimum.at(first, values, where)
    return np.flatnonzero(first[values] == where)


def _top(row: npt.NDArray[np.floating], n: int, mapping: IdMapping) -> Recommendation:
    """The ``n`` best finite entries of ``row``, best first, ties by index."""
    k = min(n, len(row))
    if k == 0:
        return Recommendation(item_ids=mapping.to_ids(np.zeros(0, np.int64)), scores=np.zeros(0, np.float32))
    part = _unique_head(row, k) if k < len(row) else np.arange(len(row))
    if part is None:  # ties at the cut: which of them make the list is the whole row's partition's choice
        part = np.argpartition(-row, k - 1)[:k]
    part = part[np.isfinite(row[part])]
    chosen = part[np.lexsort((part, -row[part]))]
    return Recommendation(item_ids=mapping.to_ids(chosen), scores=row[chosen].astype(np.float32))


#: Rows shorter than this are not pruned by ``_head_candidates`` (the bound would not pay for itself).
HEAD_MIN_ROW = 2048
#: Above this many kept entries per wanted one, ``_unique_head`` leaves the row to one partition.
HEAD_MAX_SHARE = 20


def _head_candidates(row: npt.NDArray[np.floating], n: int) -> npt.NDArray[np.int64]:
    """Indices, ascending, of the finite entries of ``row`` that can be among its top ``n``.

    Every finite entry at or above the ``n``-th largest finite value is kept (ties at the
    cut included): ``_bounded_head``'s few hundred entries, or every finite entry when
    its bound cannot be trusted.
    """
    head = _bounded_head(row, n)
    return np.flatnonzero(np.isfinite(row)) if head is None else head


def _bounded_head(row: npt.NDArray[np.floating], n: int) -> npt.NDArray[np.int64] | None:
    """Indices, ascending, of every entry at or above a lower bound of the ``n``-th largest; ``None``: no bound.

    This takes the maximum of each of ≥ 4n groups of entries; the ``n``-th largest of
    those maxima is a lower bound of the cut (``n`` groups each hold an entry at least
    that large), so one comparison over the row leaves the entries to rank: a few
    hundred on a generator's score row. A group is every ``blocks``-th entry (a column
    of the row laid out as ``width × blocks``): the maxima are then one vectorised
    reduction down the rows, less than half the cost of one reduction per contiguous
    block (any grouping bounds the cut alike).

    ``None`` when the bound cannot be trusted: a short row, ``n`` close to the row's
    length, a NaN or +inf anywhere, or fewer than ``n`` groups with a finite entry. A
    bounded head thus holds every entry at or above any value above the bound, and the
    row has no +inf.
    """
    size = len(row)
    if n < 1 or size < HEAD_MIN_ROW or 8 * n > size:
        return None
    width = size // (4 * n)
    blocks = size // width
    maxima = row[: blocks * width].reshape(width, blocks).max(axis=0)
    top = maxima.max()
    if not top < np.inf:  # NaN or +inf in a group
        return None
    tail = row[blocks * width :]
    if len(tail) and not tail.max() < np.inf:  # NaN or +inf past the last full row of groups
        return None
    bound = np.partition(maxima, blocks - n)[blocks - n]
    if not np.isfinite(bound):  # fewer than n groups hold a finite entry
        return None
    return np.flatnonzero(row >= bound)


def _unique_head(row: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.int64] | None:
    """The indices of the ``k`` largest entries of ``row`` when no tie at the cut makes them ambiguous, else ``None``.

    A partition of the whole row (``np.argpartition``, once per generator and page)
    returns exactly the entries at or above the ``k``-th largest value when there are
    exactly ``k`` of them: every other entry is strictly smaller (or NaN, which it places
    last). That value is found among the few hundred entries ``_bounded_head`` keeps,
    and the entries at or above it are counted there (a bounded head holds all of them;
    without a bound, one comparison over the row counts them). With more than ``k``
    (ties at the cut) the caller partitions the whole row as before, so the tied entries
    it takes are the ones it always took.
    """
    bounded = _bounded_head(row, k)
    head = np.flatnonzero(np.isfinite(row)) if bounded is None else bounded
    if not k <= len(head) <= HEAD_MAX_SHARE * k:  # a bound too low to pay (a row of zeros): partition the row
        return None
    values = row[head]
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    part = np.flatnonzero(row >= threshold) if bounded is None else head[values >= threshold]
    return part if len(part) == k else None


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
