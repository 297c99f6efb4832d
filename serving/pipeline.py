"""The recommendation pipeline: candidates, features, ranking, filters, fallback.

Framework-free on purpose: the BentoML service is a thin shell around
``RecommendationPipeline``, and tests and benchmarks drive the pipeline directly.

One request goes through these steps:

1. candidates: the union of the bundle's generators, each asked with the
   history the request carries (``serving.contract.ViewerContext``): item-kNN,
   seqknn and EASE score from it directly, ALS solves the user's factors from it,
   LightFM folds it in; the model server keeps no profile or history of its own;
2. features: the ranker's input rows (``serving.ranking``), when the bundle has a
   ranker: profile columns from the context (``serving.context_features``), title
   columns from the online store;
3. ranking: the ranker's score; without a ranker, the bundle's
   ``primary_candidate`` alone, else the best candidate score (min-max
   normalised per generator, so generators on different scales can be merged);
4. business filters: ``core.rules``' visibility (maturity, kids, licensing), the
   titles the context marks completed, the context's exclude list;
5. fallback: popularity under the same filters, when the history is empty or
   unknown to every model, the models fail, or too few candidates survive the filters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache, TTLCache

from core.errors import InvalidInputError, NotFoundError
from core.rules import viewer_level
from models.base import CandidateGenerator, Recommendation
from models.bundle import ModelBundle
from models.ids import IdMapping, UnknownUserError
from models.scoring import ItemScorer
from serving import content_neighbours
from serving.candidates import CandidateSources, VisibleOnly, first_occurrences, marked
from serving.catalog import TitleCatalog
from serving.context_features import profile_features
from serving.contract import MAX_K, ViewerContext
from serving.features import OnlineRankerFeatures, needs_online_features
from serving.ranking import ranking_matrix

logger = logging.getLogger(__name__)

#: The bundle role used as fallback (and left out of the candidate union when no ranker merges it).
POPULARITY_ROLE = "popularity"
#: "All items" for generators: the contract returns the whole catalog when n exceeds it.
ALL_ITEMS = 10_000_000
#: Below this share of the catalog visible to a viewer, generators are asked for more and their
#: lists filtered before ranking (a kids profile would otherwise see its candidates filtered away).
RESTRICTED_SHARE = 0.5

Source = Literal["model", "fallback"]
FallbackReason = Literal["no_history", "unknown_history", "model_error", "filtered_out", "no_personal_model"]


@dataclass(frozen=True)
class Scored:
    """Titles best first with their scores, and where they came from."""

    items: list[tuple[str, float]]
    source: Source
    reason: FallbackReason | None = None


@dataclass(frozen=True)
class Viewer:
    """Who is asking, resolved once per request from its ``ViewerContext``.

    Attributes:
        key: the context's identity (every field that can change an answer): the memo key.
        history: title ids, oldest first, each once at its latest watch.
        completed: titles the API marked completed (never recommended again).
        exclude: the caller's exclude list.
    """

    context: ViewerContext
    profile_id: str
    max_level: int
    country: str | None
    history: list[str]
    completed: frozenset[str]
    exclude: tuple[str, ...]
    key: tuple[object, ...]

    @classmethod
    def of(cls, context: ViewerContext) -> Viewer:
        """Resolve filters (``core.rules.viewer_level``) and the history of one context."""
        latest: dict[str, None] = {}
        for w in context.history:
            latest.pop(w.title_id, None)
            latest[w.title_id] = None
        exclude = tuple(context.exclude)
        key = (
            tuple((w.title_id, w.ts, w.progress, w.completed) for w in context.history),
            context.maturity_level, context.kids, context.country, context.language, exclude,
        )  # fmt: skip
        return cls(
            context=context,
            profile_id=context.profile_id,
            max_level=viewer_level(context.maturity_level, context.kids),
            country=context.country,
            history=list(latest),
            completed=context.completed_ids(),
            exclude=exclude,
            key=key,
        )


def _viewer(viewer: Viewer | ViewerContext) -> Viewer:
    return viewer if isinstance(viewer, Viewer) else Viewer.of(viewer)


class RecommendationPipeline:
    """Serve one model bundle: recommend, rank and similar-titles under business filters.

    Immutable after construction (but for a lock-guarded memo of candidate lists), so
    many threads can share one instance and a hot reload only swaps the reference to
    a new pipeline.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        catalog: TitleCatalog,
        *,
        version: str,
        n_candidates: int = 100,
        features: OnlineRankerFeatures | None = None,
        memo_s: float | None = None,
    ) -> None:
        """Prepare the pipeline.

        Args:
            bundle: the registered model version's candidate generators, ranker and metadata.
            catalog: title metadata for maturity and licensing filters (no profiles: requests carry the viewer).
            version: the model version reported in every answer.
            n_candidates: how many titles each generator proposes before filtering.
            features: online title features for the ranker, if the store is set up.
            memo_s: how long a viewer context's ranked candidates are remembered (default ``MEMO_TTL_S``;
                0 remembers nothing, every request is cold).
        """
        if not bundle.candidates:
            raise InvalidInputError("the model bundle has no candidate generators; retrain and register it again")
        self.bundle = bundle
        self.catalog = catalog
        self.version = version
        metadata = bundle.metadata
        self.n_candidates = int(metadata.get("candidate_k") or n_candidates)
        self.features = features
        self.memo_s = MEMO_TTL_S if memo_s is None else float(memo_s)
        # Training may ship a ranker it decided not to use (``ranker_used: false``, see ``ranker_note``).
        self.ranker = bundle.ranker if bundle.ranker is not None and metadata.get("ranker_used", True) else None
        self.feature_columns: list[str] = list(metadata.get("ranker_columns") or metadata.get("feature_columns") or [])
        if (
            self.ranker is not None
            and features is None
            and needs_online_features(self.feature_columns, bundle.candidates)
        ):
            # Ranking on zeros where features should be would mis-rank; the primary candidate is the safe choice.
            logger.warning(
                "model version %s has a ranker that reads online features, but the feature store has none; "
                "serving its primary candidate instead (run `marquee features materialize`)",
                version,
            )
            self.ranker = None
        personal = {role: g for role, g in bundle.candidates.items() if role != POPULARITY_ROLE}
        primary = metadata.get("primary_candidate")
        if self.ranker is not None:
            self.generators: dict[str, CandidateGenerator] = dict(bundle.candidates)
        elif primary in bundle.candidates and primary != POPULARITY_ROLE:
            # Training names the role that is best served alone when there is no ranker.
            self.generators = {primary: bundle.candidates[primary]}
        else:
            # Without a ranker to weigh it, popularity would crowd every personal list: keep it for fallback.
            self.generators = personal
        self.has_personal_model = bool(personal)
        self.sources = CandidateSources(self.generators)
        #: Who answers "similar to X": item-to-item models first, popularity (the same list for every
        #: title) only when no other model knows the title.
        self.similar_models = sorted(
            bundle.candidates.items(),
            # Each model declares its own place (``similar_priority`` on its class; models/ owns it).
            key=lambda item: (item[0] == POPULARITY_ROLE, item[1].similar_priority),
        )
        # Entries leave when their lifetime ends, not only when the bound is reached: a memo that
        # always filled to its bound held ~4,096 stale answers (the model server's soak growth).
        self._memo: TTLCache[tuple[object, ...], list[tuple[str, float]]] = TTLCache(
            MEMO_ENTRIES, ttl=max(self.memo_s, 1e-9), timer=time.monotonic
        )
        self._memo_lock = threading.Lock()
        self._neighbour_cache: LRUCache[tuple[str, int], Neighbours] = LRUCache(NEIGHBOUR_ENTRIES)
        self._neighbour_lock = threading.Lock()
        self._visible: dict[tuple[int, str | None], tuple[float, list[bool]]] = {}
        self._visible_arrays: dict[tuple[int, str | None], npt.NDArray[np.bool_]] = {}
        #: Per id mapping of an item-to-item model: the catalog title index of each item (``played_index``).
        self._title_of: dict[int, tuple[IdMapping, npt.NDArray[np.int64]]] = {}
        self.popular: list[tuple[str, float]] = self._popular_titles()
        self._pop_rank = {t: i for i, (t, _) in enumerate(self.popular)}
        #: Known titles standing in for history titles no served model knows (built once, here).
        self.content = self._content_neighbours()

    # ----------------------------------------------------------------- public API

    def recommend(self, viewer: Viewer | ViewerContext, k: int = 10) -> Scored:
        """The ``k`` best titles for the viewer that pass every business filter."""
        _check_k(k)
        viewer = _viewer(viewer)
        blocked = set(viewer.exclude) | viewer.completed
        if not self.has_personal_model:
            return Scored(self._fallback(viewer, k, blocked), "fallback", "no_personal_model")
        if not viewer.history:
            return Scored(self._fallback(viewer, k, blocked), "fallback", "no_history")
        try:
            ranked = self._remembered_candidates(viewer, k)
        except UnknownUserError:
            # No personal model knows any title this viewer watched (all outside their training data).
            return Scored(self._fallback(viewer, k, blocked), "fallback", "unknown_history")
        except Exception:
            logger.exception("candidate generation failed for profile %s; serving popularity", viewer.profile_id)
            return Scored(self._fallback(viewer, k, blocked), "fallback", "model_error")
        items = self._take(ranked, viewer, k, blocked)
        if not items:
            return Scored(self._fallback(viewer, k, blocked), "fallback", "filtered_out")
        if len(items) < k:
            chosen = blocked | {t for t, _ in items}
            floor = items[-1][1]
            items += [(t, min(s, floor)) for t, s in self._fallback(viewer, k - len(items), chosen)]
        return Scored(items, "model")

    def rank(self, viewer: Viewer | ViewerContext, title_ids: Sequence[str]) -> Scored:
        """Order the given titles for the viewer, best first.

        Titles the viewer may not see (maturity, licensing) are left out. Titles the
        models cannot score keep their popularity order after the scored ones.
        """
        viewer = _viewer(viewer)
        wanted = [t for t in dict.fromkeys(title_ids) if self.catalog.allowed(t, viewer.max_level, viewer.country)]
        pop_rank = self._popularity_rank()

        def by_popularity(reason: FallbackReason) -> Scored:
            order = sorted(wanted, key=lambda t: pop_rank.get(t, len(pop_rank)))
            n = max(len(order), 1)
            return Scored([(t, float(n - i) / n) for i, t in enumerate(order)], "fallback", reason)

        if not self.has_personal_model:
            return by_popularity("no_personal_model")
        if not viewer.history:
            return by_popularity("no_history")
        try:
            per_role = self._generate(viewer, ALL_ITEMS, [], filter_seen=False)
            scores = self._merge(per_role, only=set(wanted))
        except UnknownUserError:
            return by_popularity("unknown_history")
        except Exception:
            logger.exception("ranking failed for profile %s; ordering by popularity", viewer.profile_id)
            return by_popularity("model_error")
        scored = sorted(((t, scores[t]) for t in wanted if t in scores), key=lambda x: -x[1])
        unscored = sorted((t for t in wanted if t not in scores), key=lambda t: pop_rank.get(t, len(pop_rank)))
        floor = scored[-1][1] if scored else 0.0
        return Scored(scored + [(t, floor - 1.0 - i) for i, t in enumerate(unscored)], "model")

    def similar(self, viewer: Viewer | ViewerContext, title_id: str, k: int = 10) -> Scored:
        """Titles most like ``title_id`` that the viewer may see and has not completed or excluded.

        A catalog title no personal model knows answers through its content stand-ins
        (``_content_similar``). ``NotFoundError`` when no model and no catalog knows the
        title, or no model knows it and it has no content neighbour.
        """
        _check_k(k)
        viewer = _viewer(viewer)
        if self.catalog.known and title_id not in self.catalog:
            raise NotFoundError(f"unknown title_id {title_id!r}: it is not in the catalog")
        blocked = set(viewer.exclude) | viewer.completed | {title_id}
        # Room for the filters: a restricted viewer (kids) sees a small share of any neighbour list.
        share = self._visible_ids(viewer.max_level, viewer.country)[0]
        n = min(ALL_ITEMS, int(np.ceil((2 * k + len(blocked)) / max(share, 1e-6))) + SERIES_SEEDS)
        n = -(-n // NEIGHBOUR_BUCKET) * NEIGHBOUR_BUCKET  # a few sizes only, so the neighbour cache is reused
        ranked = self._neighbours(title_id, n)
        if ranked is None:
            raise NotFoundError(f"unknown title_id {title_id!r}: no model of version {self.version} has seen it")
        if isinstance(ranked, IndexedNeighbours):
            if self.catalog.known:
                return Scored(self._take_indexed(ranked, viewer, k, blocked), "model")
            ranked = ranked.pairs()
        return Scored(self._take(ranked, viewer, k, blocked), "model")

    def _neighbours(self, title_id: str, n: int) -> Neighbours | None:
        """The first model's ``n`` nearest played ids of a title, best first (``None``: no model knows it).

        The same for every viewer (the filters run afterwards), so kept in an LRU cache
        per pipeline: the seeds of "Because you watched" are mostly popular titles.
        A model on ``ItemScorer``'s own ``similar_items`` answers as item indices
        (``IndexedNeighbours``): the same list, merged and filtered in numpy instead of
        as a few thousand Python pairs per request (a restricted viewer asks for long
        lists); any other model answers as pairs.
        """
        key = (title_id, n)
        with self._neighbour_lock:
            hit = self._neighbour_cache.get(key)
        if hit is not None:
            return hit
        # A series is known to the models through its episodes: ask with the first few a model knows
        # (in episode order, skipping those nobody watched at training time).
        seeds = [title_id, *self.catalog.episodes_of(title_id)]
        ranked: Neighbours | None = None
        for role, generator in self.similar_models:
            if role == POPULARITY_ROLE and self.content.of(title_id):
                break  # the same list for every title: a title no personal model knows has content stand-ins
            if _indexed_similar(generator):
                assert isinstance(generator, ItemScorer)
                ranked = _indexed_neighbours(generator, seeds, n)
                if ranked is not None:
                    break
                logger.debug("generator %s does not know title %s", role, title_id)
                continue
            found: dict[str, float] = {}
            asked = 0
            for seed in seeds:
                if asked == SERIES_SEEDS:
                    break
                try:
                    rec = generator.similar_items(seed, n=n)
                except (KeyError, ValueError, IndexError, LookupError):
                    continue
                asked += 1
                for played_id, score in _pairs(rec):
                    if score > found.get(played_id, -np.inf):
                        found[played_id] = score
            if found:
                ranked = sorted(found.items(), key=lambda x: -x[1])
                break
            logger.debug("generator %s does not know title %s", role, title_id)
        if ranked is None:
            ranked = self._content_similar(self.content.of(title_id), n)
        if ranked is not None:
            with self._neighbour_lock:
                self._neighbour_cache[key] = ranked
        return ranked

    def _content_similar(self, stand_ins: Sequence[str], n: int) -> list[tuple[str, float]] | None:
        """Neighbours of a title no model knows: its content stand-ins first, then the models' neighbours of them.

        Each stand-in's list is ``_neighbours``' own (cached); an id met under several
        keeps its best score. The stand-ins lead, above every model score, in their
        content order. ``None`` when there is no stand-in.
        """
        if not stand_ins:
            return None
        found: dict[str, float] = {}
        for seed in stand_ins:
            ranked = self._neighbours(seed, n)
            if ranked is None:
                continue
            for played_id, score in ranked.pairs() if isinstance(ranked, IndexedNeighbours) else ranked:
                if score > found.get(played_id, -np.inf):
                    found[played_id] = score
        top = max(found.values(), default=0.0)
        head = [(seed, top + len(stand_ins) - i) for i, seed in enumerate(stand_ins)]
        rest = sorted(((t, s) for t, s in found.items() if t not in stand_ins), key=lambda x: -x[1])
        return head + rest

    def warm_up(self, viewers: int = 3) -> int:
        """Answer a few real questions before serving, so the first requests do not pay for first use.

        A fresh pipeline's first request opens the online store's connection, runs the
        ranker for the first time and touches every generator's arrays: ~10x a normal
        request. Right after a start, when every API worker asks at once, that pushed
        calls past the API's budget and opened its circuit. The model server knows no
        profile, so the questions are made up: viewers who watched a few popular titles.
        Returns the questions asked.
        """
        from datetime import UTC, datetime

        from serving.contract import WatchedTitle

        popular = [t for t, _ in self.popular[: 5 * viewers]]
        now = datetime.now(UTC)
        warmed = 0
        for i in range(viewers):
            titles = popular[i::viewers][:5]
            if not titles:
                break
            context = ViewerContext(
                profile_id=f"warm-up-{i}",
                history=[WatchedTitle(title_id=t, ts=now, progress=0.5) for t in titles],
                maturity_level=3,
                kids=False,
            )
            try:
                self.recommend(context, k=10)
                self.similar(context, titles[-1], k=10)
            except Exception as exc:  # a warm-up must never stop a pipeline from serving
                logger.debug("warm-up request %d failed: %s", i, exc)
            warmed += 1
        return warmed

    def score_rows(self, features: np.ndarray) -> np.ndarray:
        """Ranker scores for feature rows, shape (n, d) float32 → (n,) float32 (batchable API)."""
        if self.ranker is None:
            raise NotFoundError(f"model version {self.version} has no ranker; use /recommend or /rank")
        if features.ndim != 2 or features.shape[1] != len(self.feature_columns):
            raise InvalidInputError(
                f"features must have shape (n, {len(self.feature_columns)}) in the order {self.feature_columns}, "
                f"got {features.shape}"
            )
        return self.ranker.score(features.astype(np.float32, copy=False))

    # ----------------------------------------------------------------- steps

    def _generate(
        self, viewer: Viewer, n: int, exclude: list[str], *, filter_seen: bool = True, restricted: bool = False
    ) -> dict[str, Recommendation]:
        """Each generator's proposals; a generator that knows none of the viewer's titles is left out.

        A viewer whose few watches all lie outside one model's training data (titles
        added since, a corner of the catalog) still gets the other generators'
        candidates, and the ranker sees that source as absent, as in training when a
        source proposed nothing. ``UnknownUserError`` only when no personal generator
        could say anything. ``restricted``: propose only titles the viewer may see.
        """
        only: VisibleOnly | None = None
        generic_n = None
        if restricted:
            level, country, catalog = viewer.max_level, viewer.country, self.catalog
            if catalog.known:
                index, flags, unknown = catalog.played_index(), catalog.visible_flags(level, country), len(catalog)
                visible = self._visible_array(level, country)
                only = VisibleOnly(
                    (level, country),
                    lambda played: flags[index.get(played, unknown)],
                    lambda mapping: visible[self._title_index(mapping)],
                )
            else:
                only = VisibleOnly((level, country), lambda played: True)
            share = self._visible_ids(level, country)[0]
            generic_n = min(ALL_ITEMS, int(np.ceil(3 * n / max(share, 1e-6))))
        proposals: dict[str, Recommendation] = {}
        read, standing_in = self._read_history(viewer.history)
        asked = self.sources.propose(
            read,
            n,
            exclude=exclude,
            filter_seen=filter_seen,
            only_visible=only,
            generic_n=generic_n,
            seen=[t for t in read if t not in standing_in] if standing_in else None,
        )
        for role, rec in asked.items():
            if isinstance(rec, UnknownUserError):
                logger.debug("generator %s knows no title of profile %s; leaving it out", role, viewer.profile_id)
                continue
            proposals[role] = rec
        if not any(role != POPULARITY_ROLE for role in proposals):
            raise UnknownUserError(
                f"no personal model of version {self.version} knows a title profile {viewer.profile_id!r} watched"
            )
        return proposals

    def _model_history(self, history: list[str]) -> list[str]:
        """The history as the models can read it (``_read_history``'s first part)."""
        return self._read_history(history)[0]

    def _read_history(self, history: list[str]) -> tuple[list[str], set[str]]:
        """The history as the models can read it, and the ids in it the viewer never watched.

        Models learn from what was played, episodes; a history entry that names a series
        (an onboarding "titles I like", a watch posted for the series) was invisible to
        every model, so that watch changed nothing but the ranker's profile features and
        Top Picks could stay as they were. The first ``SERIES_SEEDS`` episodes stand in
        for it (as for "similar to a series"), just before the series id itself.

        A title no served model saw in training (``self.content``) is read the same way
        through its nearest known titles by content (each as the models read it: a series
        through its first episodes), just before the unknown id, which stays for the filters.
        Those stand-ins are the second part: read as history (so the models answer for a
        title they do not know) but not left out as seen, since the nearest known titles to
        what was just watched are good candidates for Top Picks too. A stand-in the history
        holds itself (or, for a series, through its episodes) stays seen. A history with
        nothing to stand in for is returned as it is, with no stand-ins.
        """
        episodes_of, stand_ins = self.catalog.episodes_of, self.content.of
        if not any(episodes_of(t) or stand_ins(t) for t in history):
            return history, set()
        out: list[str] = []
        borrowed: set[str] = set()
        own: set[str] = set()
        for title_id in history:
            for seed in stand_ins(title_id):
                episodes = [e for e in episodes_of(seed)[:SERIES_SEEDS] if e != seed]
                out.extend(episodes)
                out.append(seed)
                borrowed.update(episodes, (seed,))
            episodes = [e for e in episodes_of(title_id)[:SERIES_SEEDS] if e != title_id]
            out.extend(episodes)
            out.append(title_id)
            own.update(episodes, (title_id,))
        return list(dict.fromkeys(reversed(out)))[::-1], borrowed - own  # one entry per id, at its latest place

    def _content_neighbours(self) -> content_neighbours.ContentNeighbours:
        """The content stand-in table for this bundle's served models (``serving.content_neighbours``).

        "Known" means readable by a personal generator this pipeline asks for candidates.
        A generator whose fitted ids cannot be read (not an ``ItemScorer``) might know any
        title: then no title gets stand-ins, so a history it reads is never changed.
        """
        vocabulary: set[str] = set()
        mappings: dict[int, IdMapping] = {}
        for role, generator in self.generators.items():
            if role == POPULARITY_ROLE or not getattr(generator, "personalised", True):
                continue
            if not isinstance(generator, ItemScorer):
                logger.info("generator %s does not list the ids it knows: no content stand-ins", role)
                return content_neighbours.ContentNeighbours()
            mappings.setdefault(id(generator.history.items), generator.history.items)
        for mapping in mappings.values():
            vocabulary.update(mapping.ids.tolist())
        if not vocabulary or not self.catalog.tokens:
            return content_neighbours.ContentNeighbours()
        known = content_neighbours.known_titles(self.catalog, vocabulary, SERIES_SEEDS)
        rank = content_neighbours.popularity_rank(self.catalog, self.popular)
        found = content_neighbours.build(self.catalog, known, rank, vocabulary)
        logger.info(
            "model version %s: %d of %d catalog titles unknown to its models, %d ids with content stand-ins (%.0f ms)",
            self.version, found.unknown, len(self.catalog), len(found), 1000 * found.build_s,
        )  # fmt: skip
        return found

    def _remembered_candidates(self, viewer: Viewer, k: int) -> list[tuple[str, float]]:
        """``_ranked_candidates``, remembered per viewer context and size for ``memo_s`` seconds.

        The key is the whole viewer context (``Viewer.key``: history with times and
        progress, filters, exclude list), so a new watch is a new key and is never
        answered from an old entry; what can move under one key is the online title
        features the ranker reads, hence the short lifetime. The API asks again for the
        same viewer from each of its workers and from its background refreshes; this
        turns those repeats from the whole pipeline into the filters alone.
        """
        key = (viewer.key, k)
        if self.memo_s > 0:
            with self._memo_lock:
                hit = self._memo.get(key)
            if hit is not None:
                return hit
        ranked = self._ranked_candidates(viewer, list(viewer.exclude), k)
        if self.memo_s <= 0:
            return ranked
        with self._memo_lock:
            self._memo[key] = ranked
        return ranked

    def _restricted(self, viewer: Viewer) -> bool:
        """Whether the viewer's maturity level and country hide most of the catalog (a kids profile)."""
        return self._visible_ids(viewer.max_level, viewer.country)[0] < RESTRICTED_SHARE

    def _visible_ids(self, max_level: int, country: str | None) -> tuple[float, list[bool]]:
        """The share of catalog titles that pass these filters, and the catalog's visibility flags.

        The flags are ``TitleCatalog.visible_flags`` (``core.rules.may_see`` per title
        index); a played id passes when ``played_index`` maps it (an episode to its
        series) to a title whose flag is set. Computed once per (level, country) and
        pipeline: a handful of pairs ever occur, and a request's filters become one
        dict and one list lookup per candidate.
        """
        key = (max_level, country)
        found = self._visible.get(key)
        if found is None:
            flags = self.catalog.visible_flags(max_level, country)
            n = len(self.catalog)
            share = sum(flags) / n if n else 1.0
            found = self._visible[key] = (share, flags)
        return found

    def _ranked_candidates(self, viewer: Viewer, exclude: list[str], k: int) -> list[tuple[str, float]]:
        # The ranker was trained on ``candidate_k`` per source; without one, ask for room to filter.
        n = max(self.n_candidates, k) if self.ranker is not None else max(self.n_candidates, 2 * k)
        # Most of each generator's top ``n`` would be filtered out after ranking for a restricted
        # viewer (for a kids profile often all of it): each generator proposes its first ``n`` visible.
        per_role = self._generate(viewer, n, exclude, restricted=self._restricted(viewer))
        if self.ranker is None:
            merged = self._merge(per_role)
            return sorted(merged.items(), key=lambda x: -x[1])
        lists = {role: (rec.item_ids.tolist(), rec.scores.tolist()) for role, rec in per_role.items()}
        title_ids = list(dict.fromkeys(t for ids, _ in lists.values() for t in ids))
        if not title_ids:
            return []
        profile, title_columns = self._features(viewer, title_ids)
        matrix = ranking_matrix(self.feature_columns, title_ids, lists, profile, title_columns)
        scores = self.ranker.score(matrix)
        return sorted(zip(title_ids, scores.tolist(), strict=True), key=lambda x: -x[1])

    def _features(self, viewer: Viewer, title_ids: list[str]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Ranker inputs beyond the candidate columns: profile values from the context, title columns."""
        if not self.features:
            return {}, {}
        history = viewer.context.history
        values = profile_features(
            [w.title_id for w in history],
            np.fromiter((w.ts.timestamp() for w in history), dtype=np.float64, count=len(history)),
            np.fromiter((w.progress for w in history), dtype=np.float64, count=len(history)),
            np.fromiter((w.completed for w in history), dtype=bool, count=len(history)),
            now_s=time.time(),
            genres_of=self.catalog.genres_of,
            duration_of=self.catalog.duration_of,
            canonical=self.catalog.canonical,
        )
        return self.features.columns(values, title_ids, self.feature_columns, self.catalog.genre_match)

    def _merge(self, per_role: dict[str, Recommendation], only: set[str] | None = None) -> dict[str, float]:
        """Best candidate score per title; several generators are min-max normalised first."""
        if len(per_role) == 1:
            (rec,) = per_role.values()
            return {
                t: s for t, s in zip(rec.item_ids.tolist(), rec.scores.tolist(), strict=True) if not only or t in only
            }
        merged: dict[str, float] = {}
        for rec in per_role.values():
            if len(rec.scores) == 0:
                continue
            lo, hi = float(rec.scores.min()), float(rec.scores.max())
            span = hi - lo or 1.0
            for t, s in zip(rec.item_ids.tolist(), rec.scores.tolist(), strict=True):
                if only and t not in only:
                    continue
                value = (s - lo) / span
                if value > merged.get(t, -1.0):
                    merged[t] = value
        return merged

    def _take(
        self, ranked: Iterable[tuple[str, float]], viewer: Viewer, k: int, blocked: set[str] | frozenset[str]
    ) -> list[tuple[str, float]]:
        """The first ``k`` catalog titles that pass the filters, in order.

        Episode ids become their series (first occurrence wins, so a series ranks by its
        best episode); the filters and ``blocked`` then judge the series.
        """
        out: list[tuple[str, float]] = []
        taken: set[str] = set()
        if not self.catalog.known:
            # Without title metadata there is nothing to judge titles by: every id passes.
            for played_id, score in ranked:
                if played_id in taken or played_id in blocked:
                    continue
                taken.add(played_id)
                out.append((played_id, score))
                if len(out) == k:
                    break
            return out
        flags = self._visible_ids(viewer.max_level, viewer.country)[1]
        index, titles, unknown = self.catalog.played_index(), self.catalog.title_ids, len(self.catalog)
        for played_id, score in ranked:
            i = index.get(played_id, unknown)
            if not flags[i]:
                continue
            title_id = titles[i]
            if title_id in taken or title_id in blocked or played_id in blocked:
                continue
            taken.add(title_id)
            out.append((title_id, score))
            if len(out) == k:
                break
        return out

    def _take_indexed(
        self, ranked: IndexedNeighbours, viewer: Viewer, k: int, blocked: set[str] | frozenset[str]
    ) -> list[tuple[str, float]]:
        """``_take`` of an indexed neighbour list, in numpy: the same titles, scores and order.

        Each played index maps to its catalog title index once per id mapping; a position
        passes when its title is visible, neither the title nor the played id is blocked,
        and its title has not passed earlier in the list (first occurrence wins).
        """
        title_of = self._title_index(ranked.mapping)[ranked.idx]
        flags = self._visible_array(viewer.max_level, viewer.country)
        ok = flags[title_of]
        if blocked:
            # Blocked titles and played ids as lookup tables (one gather each): np.isin sorted both
            # sides per call, a visible share of a cold page for a few dozen blocked ids.
            catalog_idx = [i for t in blocked if (i := self.catalog.title_index(t)) is not None]
            if catalog_idx:
                ok &= ~marked(catalog_idx, len(self.catalog) + 1)[title_of]
            played = ranked.mapping.known_idx(blocked)
            if len(played):
                ok &= ~marked(played, len(ranked.mapping))[ranked.idx]
        positions = np.flatnonzero(ok)
        if not len(positions):
            return []
        positions = positions[first_occurrences(title_of[positions], len(self.catalog) + 1)[:k]]
        titles = self.catalog.title_ids
        return [
            (titles[t], s) for t, s in zip(title_of[positions].tolist(), ranked.scores[positions].tolist(), strict=True)
        ]

    def _title_index(self, mapping: IdMapping) -> npt.NDArray[np.int64]:
        """Catalog title index of every id of ``mapping`` (``len(catalog)``: unknown), built once per mapping."""
        found = self._title_of.get(id(mapping))
        if found is None or found[0] is not mapping:
            index, unknown = self.catalog.played_index(), len(self.catalog)
            array = np.fromiter((index.get(i, unknown) for i in mapping.ids.tolist()), np.int64, len(mapping.ids))
            found = self._title_of[id(mapping)] = (mapping, array)
        return found[1]

    def _visible_array(self, max_level: int, country: str | None) -> npt.NDArray[np.bool_]:
        """``_visible_ids``' flags as a numpy array (the last entry, unknown titles, is ``False``)."""
        key = (max_level, country)
        found = self._visible_arrays.get(key)
        if found is None:
            found = self._visible_arrays[key] = np.asarray(self._visible_ids(max_level, country)[1], dtype=bool)
        return found

    def _fallback(self, viewer: Viewer, k: int, blocked: set[str] | frozenset[str]) -> list[tuple[str, float]]:
        """Popularity under the same filters; the profile's own history is skipped too."""
        seen = blocked | set(viewer.history) if viewer.history else blocked
        return self._take(self.popular, viewer, k, seen)

    def _popular_titles(self) -> list[tuple[str, float]]:
        """Titles by popularity: the bundle's popularity model, then every other catalog title.

        The model server reads no watch events, so without a popularity model in the
        bundle the catalog's own order stands in (the API's fallback has real counts).
        Titles the model never saw still make a (low) fallback, so a kids profile never
        gets an empty row.
        """
        ranked: list[tuple[str, float]] = []
        model = self.bundle.candidates.get(POPULARITY_ROLE)
        if model is not None:
            try:
                ranked = _pairs(model.recommend("", ALL_ITEMS, history=[], filter_seen=False))
            except Exception:
                logger.exception("the bundle's popularity model failed; the fallback uses catalog order")
        floor = min((s for _, s in ranked), default=0.0)
        listed = {t for t, _ in ranked}
        ranked += [(t, min(floor, 0.0)) for t in self.catalog.title_ids if t not in listed]
        return ranked

    def _popularity_rank(self) -> dict[str, int]:
        return self._pop_rank


#: Lifetime and number of remembered candidate lists (``_remembered_candidates``).
MEMO_TTL_S = 120.0
MEMO_ENTRIES = 4096
#: Titles whose neighbour lists are kept per pipeline, and the list sizes they are rounded up to.
NEIGHBOUR_ENTRIES = 4096
NEIGHBOUR_BUCKET = 50
#: Episodes of a series asked for similar titles when the series itself is unknown to a model.
SERIES_SEEDS = 3


def _pairs(rec: Recommendation) -> list[tuple[str, float]]:
    return list(zip(rec.item_ids.tolist(), rec.scores.tolist(), strict=True))


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}, got {k}")


@dataclass(frozen=True)
class IndexedNeighbours:
    """A neighbour list as item indices of one model's id mapping, best first (``_neighbours``)."""

    mapping: IdMapping
    idx: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]

    def pairs(self) -> list[tuple[str, float]]:
        """The list as (played id, score) pairs."""
        return list(zip(self.mapping.to_ids(self.idx).tolist(), self.scores.tolist(), strict=True))


#: A cached neighbour list: pairs, or indices for models on ``ItemScorer``'s own ``similar_items``.
Neighbours = list[tuple[str, float]] | IndexedNeighbours


def _indexed_similar(generator: CandidateGenerator) -> bool:
    """Whether ``generator``'s ``similar_items`` is ``ItemScorer``'s (then its ``similar_indices`` gives the same list).

    ``ItemScorer.similar_items`` is ``similar_indices`` with the indices turned into ids,
    so a model may answer ``similar_indices`` its own way (item-kNN reads its stored
    neighbours) and still be served as indices; one that changes ``similar_items`` may not.
    """
    if not isinstance(generator, ItemScorer):
        return False
    return type(generator).similar_items is ItemScorer.similar_items


def _indexed_neighbours(generator: ItemScorer, seeds: Sequence[str], n: int) -> IndexedNeighbours | None:
    """The pair path of ``_neighbours`` for one model, in numpy: the same list, as indices.

    Each of the first ``SERIES_SEEDS`` seeds the model knows gives its top ``n``; an item
    met under several seeds keeps its best score and the place where it was met first;
    the list is ordered by score, ties by that place (what a stable sort of the merged
    dict gives). ``None`` when the model knows no seed or its lists are empty.
    """
    lists: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
    for seed in seeds:
        if len(lists) == SERIES_SEEDS:
            break
        try:
            lists.append(generator.similar_indices(seed, n=n))
        except (KeyError, ValueError, IndexError, LookupError):
            continue
    if not lists or not sum(len(i) for i, _ in lists):
        return None
    if len(lists) == 1:
        idx, scores = lists[0]
    else:
        every = np.concatenate([i for i, _ in lists])
        values = np.concatenate([s for _, s in lists])
        unique, where = np.unique(every, return_inverse=True)
        best = np.full(len(unique), -np.inf, np.float32)
        np.maximum.at(best, where, values)
        first = np.full(len(unique), len(every), np.int64)
        np.minimum.at(first, where, np.arange(len(every), dtype=np.int64))
        order = np.lexsort((first, -best))
        idx, scores = unique[order], best[order]
    return IndexedNeighbours(generator.history.items, idx, scores)
