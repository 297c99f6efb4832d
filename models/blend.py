"""``Blend``: score fusion of several candidate generators, weights learned on a validation split.

No single model wins everywhere: recency-weighted EASE is hard to beat when a
history has no useful order, transitions (``seqknn``) win when it has, and
popularity around the profile's own "now" wins on trend-driven data. The blend
fits each member, scales each member's scores per user to [0, 1] (over the
titles the user has not watched), and adds them with weights.

The weights are learned inside ``fit`` (unless given) on the protocol's
validation rule applied to the training interactions: each profile's last 20 %
held out. Members are fitted on the rest, the weights are searched one member at
a time starting from the best member alone (so on validation the blend is never
worse than its best member, and a change is kept only when its gain exceeds the
validation noise), then every member is refitted on all the
interactions. Nothing here is fitted to a dataset: the members, the grid and the
rule are the same for any data.

Members whose catalog check refuses the data (EASE past what memory allows) are
left out, so the blend still runs on a large catalog.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.base import Interactions
from models.ease import CatalogTooLargeError
from models.history import Histories
from models.registry import model_class
from models.scoring import ItemScorer, UserContext

logger = logging.getLogger(__name__)

#: Members of the default blend: the two baselines, transitions + kNN + time, kNN alone, time-aware popularity.
DEFAULT_MEMBERS = ("recency_ease", "ease", "seqknn", "item_knn", "time_popularity")
#: Weights tried for each member (relative to the best member, which starts at 1).
WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
#: Passes of the coordinate search over the members.
PASSES = 2
#: A weight change must raise validation ndcg@10 by at least this share of the current value ...
MIN_RELATIVE_GAIN = 0.005
#: ... and by this many standard errors of the paired per-profile difference (see ``beats``).
NOISE_Z = 2.0
#: At most this many validation profiles (seeded sample) decide the weights: bounds time and memory.
MAX_VALIDATION_USERS = 3000
MIN_INTERACTIONS = 5
HOLDOUT = 0.2
#: Popularity-dampening exponents tried on validation (``dampen``): 0 leaves the blend as it is.
DAMPENING_GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)


def _holdout_mask(hist: Histories) -> npt.NDArray[np.bool_]:
    """Rows of each profile's last ``ceil(0.2 n)`` watches (profiles with 5+ watches), the validation rule."""
    counts = np.diff(hist.indptr)
    n_test = np.where(counts >= MIN_INTERACTIONS, np.ceil(HOLDOUT * counts - 1e-9), 0).astype(np.int64)
    rank = np.arange(len(hist.item_idx)) - np.repeat(hist.indptr[:-1], counts)
    return rank >= np.repeat(counts - n_test, counts)  # type: ignore[no-any-return]


def _scaled(scores: npt.NDArray[np.float32], seen: Sequence[npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
    """Each row scaled to [0, 1] by the min and max over the titles that row's user has not watched."""
    masked = scores.astype(np.float32, copy=True)
    for k, items in enumerate(seen):
        if len(items):
            masked[k, items] = np.nan
    with np.errstate(all="ignore"):
        low = np.nanmin(masked, axis=1, keepdims=True)
        high = np.nanmax(masked, axis=1, keepdims=True)
    low = np.nan_to_num(low)
    span = np.nan_to_num(high) - low
    span[~(span > 0)] = 1.0
    return ((scores - low) / span).astype(np.float32)  # type: ignore[no-any-return]


def ndcg_per_user(scores: npt.NDArray[np.float32], relevant: Sequence[set[int]]) -> npt.NDArray[np.float64]:
    """Binary ndcg@10 of each score row (seen titles already at -inf) against its relevant item set."""
    k = min(10, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    out = np.zeros(len(relevant), np.float64)
    for u, (row, rel) in enumerate(zip(top, relevant, strict=True)):
        gains = np.fromiter((1.0 if i in rel else 0.0 for i in row), np.float64, count=k)
        ideal = discount[: min(k, len(rel))].sum()
        out[u] = float(gains @ discount) / ideal if ideal else 0.0
    return out


def ndcg_at_10(scores: npt.NDArray[np.float32], relevant: Sequence[set[int]]) -> float:
    """Mean binary ndcg@10 of score rows (seen titles already at -inf) against relevant item sets."""
    return float(ndcg_per_user(scores, relevant).sum()) / max(len(relevant), 1)


def beats(trial: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> bool:
    """Whether per-profile ndcg ``trial`` beats ``current`` by more than validation noise.

    Both conditions are relative to the data, never to a dataset: the mean paired gain must exceed
    ``MIN_RELATIVE_GAIN`` of the current mean and ``NOISE_Z`` standard errors of the per-profile
    differences (a paired test over the validation profiles). A gain smaller than that is as likely
    to be the sample's luck as the member's signal, and it costs on test (the shuffled-order
    controls lost 0.4-0.7 % to such weights before this rule).
    """
    diff = trial - current
    if len(diff) < 2:
        return False
    gain = float(diff.mean())
    if gain <= MIN_RELATIVE_GAIN * float(current.mean()):
        return False
    return gain > NOISE_Z * float(diff.std(ddof=1)) / float(np.sqrt(len(diff)))


def learn_weights(
    member_scores: Mapping[str, npt.NDArray[np.float32]], relevant: Sequence[set[int]]
) -> tuple[dict[str, float], dict[str, float], float]:
    """Coordinate search of blend weights maximising ndcg@10 on validation.

    Starts from the best member alone (weight 1, others 0). For each other member in turn, the best
    weight of the grid is taken only when it ``beats`` the current blend by more than the validation
    noise, so the result is never worse than the best member on this data and a member that adds
    only noise keeps weight 0.

    Returns:
        The weights, each member's own validation ndcg@10, and the blend's.
    """
    per_user = {name: ndcg_per_user(s, relevant) for name, s in member_scores.items()}
    alone = {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user.items()}
    best_member = max(alone, key=lambda n: (alone[n], -list(alone).index(n)))
    weights = {name: (1.0 if name == best_member else 0.0) for name in member_scores}
    current = per_user[best_member]
    for _ in range(PASSES):
        improved = False
        for name in member_scores:
            if name == best_member:
                continue
            candidate: tuple[float, dict[str, float], npt.NDArray[np.float64]] | None = None
            for value in WEIGHT_GRID:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                blended = sum(w * member_scores[n] for n, w in trial.items() if w > 0)
                scores = ndcg_per_user(np.asarray(blended, np.float32), relevant)
                if candidate is None or scores.mean() > candidate[0]:
                    candidate = (float(scores.mean()), trial, scores)
            if candidate is not None and beats(candidate[2], current):
                weights, current, improved = candidate[1], candidate[2], True
        if not improved:
            break
    return weights, alone, float(current.mean()) if len(current) else 0.0


def coverage_at_10(scores: npt.NDArray[np.float32]) -> float:
    """Share of the catalog in the union of the rows' top 10 (seen titles at -inf): the protocol's coverage@10."""
    k = min(10, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return len(np.unique(top)) / max(scores.shape[1], 1)


def dampen(
    scores: npt.NDArray[np.float32], counts: npt.NDArray[np.float64], exponent: float
) -> npt.NDArray[np.float32]:
    """Inverse-propensity dampening: each title's score divided by ``(1 + its watch count) ** exponent``.

    Popular titles are recommended to most profiles because they are popular, not because they fit
    this one; dividing by a power of the count (the propensity of being watched at all) lets a
    title that fits nearly as well but is watched less reach the top 10. Scores must be non-negative
    (the blend's are: weighted sums of [0, 1]-scaled scores); ``-inf`` (seen) stays ``-inf``.
    """
    if exponent == 0:
        return scores
    return (scores / np.power(1.0 + counts, exponent)[None, :]).astype(np.float32)  # type: ignore[no-any-return]


def choose_dampening(
    blended: npt.NDArray[np.float32],
    relevant: Sequence[set[int]],
    counts: npt.NDArray[np.float64],
    reference_coverage: float | None,
) -> tuple[float, list[dict[str, float]]]:
    """The dampening exponent chosen on validation: coverage raised without losing ndcg@10.

    Tries ``DAMPENING_GRID``; an exponent is allowed when its validation ndcg@10 stays within
    ``MIN_RELATIVE_GAIN`` of the undampened blend's: the share below which the weight search calls a
    gain noise is the share below which a loss is called noise too. The smallest allowed exponent whose
    coverage@10 reaches ``reference_coverage`` (the reference member's, on the same profiles) wins;
    when none reaches it, the allowed exponent with the highest coverage. The rule is relative to
    the data (its own ndcg, its reference member's coverage), so no constant is fitted to a dataset.

    Returns:
        The exponent, and the curve (exponent, ndcg@10, coverage@10) for the record.
    """
    curve: list[dict[str, float]] = []
    for exponent in DAMPENING_GRID:
        scores = dampen(blended, counts, exponent)
        value = float(ndcg_per_user(scores, relevant).mean()) if len(relevant) else 0.0
        curve.append(
            {"exponent": exponent, "ndcg@10": round(value, 5), "coverage@10": round(coverage_at_10(scores), 5)}
        )
    return pick_dampening(curve, reference_coverage), curve


def pick_dampening(curve: Sequence[Mapping[str, float]], reference_coverage: float | None) -> float:
    """The dampening rule on a validation curve (exponent, ndcg@10, coverage@10), exponent 0 first.

    The one owner of the rule for every model that dampens (the blend): an exponent is allowed when
    its ndcg@10 stays within
    ``MIN_RELATIVE_GAIN`` of the undampened (first) point's; the smallest allowed exponent whose
    coverage@10 reaches ``reference_coverage`` wins, else the allowed one with the most coverage.
    """
    if not curve or curve[0]["exponent"] != 0.0:
        raise ValueError("a dampening curve starts at exponent 0 (the undampened scores)")
    base = curve[0]["ndcg@10"]
    allowed = [c for c in curve if c["ndcg@10"] >= base * (1.0 - MIN_RELATIVE_GAIN)]
    if reference_coverage is not None:
        reaching = [c for c in allowed if c["coverage@10"] >= reference_coverage]
        if reaching:
            return float(reaching[0]["exponent"])
    best = max(allowed, key=lambda c: (c["coverage@10"], -c["exponent"]))
    return float(best["exponent"])


class Blend(ItemScorer):
    """Weighted sum of members' per-user [0, 1] scores; weights learned on validation inside ``fit``.

    Args:
        members: registry names of the candidate generators blended.
        member_params: constructor params per member (e.g. tuned ones); members not named use defaults.
        weights: member → weight; None learns them on the validation rule during ``fit``.
        seed: seeds the members that draw random numbers and the validation-profile sample.
    """

    name: ClassVar[str] = "blend"
    #: Nothing to search from outside: the weights are learned on validation inside ``fit``.
    tuning_space: ClassVar[dict[str, list[Any]]] = {}
    #: Its members carry the tuned params: ``evaluate`` passes theirs in (see ``members_of``).
    blends_members: ClassVar[bool] = True
    similar_priority: ClassVar[int] = 15

    def __init__(
        self,
        members: Sequence[str] = DEFAULT_MEMBERS,
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        weights: Mapping[str, float] | None = None,
        seed: int = 0,
        dampening: float | None = None,
        coverage_reference: str | None = "recency_ease",
    ) -> None:
        members = list(dict.fromkeys(members))
        if not members:
            raise ValueError("a blend needs at least one member")
        if "blend" in members:
            raise ValueError("a blend cannot contain a blend")
        if dampening is not None and not 0.0 <= dampening <= 2.0:
            raise ValueError(f"dampening must be between 0 and 2, got {dampening}")
        params = {m: dict(p) for m, p in (member_params or {}).items() if m in members}
        super().__init__(
            members=members,
            member_params=params,
            weights=dict(weights) if weights else None,
            seed=seed,
            dampening=dampening,
            coverage_reference=coverage_reference,
        )
        self.members = members
        self.member_params = params
        self.weights: dict[str, float] | None = dict(weights) if weights else None
        self.seed = seed
        self.dampening = dampening
        self.coverage_reference = coverage_reference
        self.validation: dict[str, Any] = {}
        self._models: dict[str, ItemScorer] = {}
        self._counts: npt.NDArray[np.float64] | None = None

    # -- fitting ---------------------------------------------------------------------------
    def _build(self, name: str) -> ItemScorer:
        cls = model_class(name)
        kwargs = dict(self.member_params.get(name, {}))
        if "seed" in inspect.signature(cls).parameters:
            kwargs.setdefault("seed", self.seed)
        model = cls(**kwargs)
        if not isinstance(model, ItemScorer):
            raise ValueError(f"blend member {name!r} is not an item scorer")
        return model

    def _usable(self, n_items: int) -> list[str]:
        usable = []
        for name in self.members:
            try:
                check = getattr(model_class(name), "check_catalog", None)
                if check is not None:
                    check(n_items)
            except CatalogTooLargeError as exc:
                logger.warning("blend leaves out %s: %s", name, exc)
                continue
            usable.append(name)
        if not usable:
            raise CatalogTooLargeError("no blend member can fit this catalog")
        return usable

    def _fit_members(self, interactions: Interactions, names: Sequence[str], **context: Any) -> dict[str, ItemScorer]:
        return {name: self._build(name).fit(interactions, **context) for name in names}  # type: ignore[misc]

    def fit(self, interactions: Interactions, **context: Any) -> Blend:
        """Learn the weights on the validation rule (unless given), then fit every member on all of ``interactions``."""
        super().fit(interactions, **context)
        names = self._usable(self.history.n_items)
        if self.weights is None:
            self.weights = self._learn(names, **context)
        if self.dampening is None:
            self.dampening = 0.0
        names = [n for n in names if self.weights.get(n, 0.0) > 0]
        self._models = self._fit_members(interactions, names, **context)
        self.params["weights"] = dict(self.weights)
        self.params["dampening"] = self.dampening
        return self

    @property
    def counts(self) -> npt.NDArray[np.float64]:
        """Watches per title in the blend's histories (the propensity ``dampen`` divides by)."""
        if self._counts is None:
            hist = self.history
            self._counts = np.bincount(hist.item_idx, minlength=hist.n_items).astype(np.float64)
        return self._counts

    def _fit(self, hist: Histories, **context: Any) -> None:
        del hist, context  # ``fit`` does the work: members need the interactions, not only the histories

    def _learn(self, names: Sequence[str], **context: Any) -> dict[str, float]:
        hist = self.history
        held = _holdout_mask(hist)
        if not held.any() or len(names) == 1:
            return {n: 1.0 / len(names) for n in names}
        users = hist.user_of_row()
        keep = ~held
        train = Interactions(
            user_ids=hist.users.to_ids(users[keep]),
            item_ids=hist.items.to_ids(hist.item_idx[keep]),
            timestamps=hist.ts[keep],
            weights=hist.weight[keep],
        )
        models = self._fit_members(train, names, **context)
        first = next(iter(models.values())).history
        val_users = np.unique(users[held])
        rng = np.random.default_rng(self.seed)
        if len(val_users) > MAX_VALIDATION_USERS:
            val_users = np.sort(rng.choice(val_users, MAX_VALIDATION_USERS, replace=False))
        user_ids = hist.users.to_ids(val_users)
        relevant: list[set[int]] = []
        for u in val_users:
            rows = np.flatnonzero(held & (users == u))
            known = first.items.known_idx(hist.items.to_ids(hist.item_idx[rows]).tolist())
            relevant.append(set(known.tolist()))
        contexts = [models[names[0]].context(str(u)) for u in user_ids]
        seen = [c.items for c in contexts]
        member_scores: dict[str, npt.NDArray[np.float32]] = {}
        for name, model in models.items():
            scores = _scaled(model._score(contexts), seen)
            for k, items in enumerate(seen):
                if len(items):
                    scores[k, items] = -np.inf
            member_scores[name] = scores
        present = [k for k, rel in enumerate(relevant) if rel]
        member_scores = {n: s[present] for n, s in member_scores.items()}
        relevant = [relevant[k] for k in present]
        weights, alone, value = learn_weights(member_scores, relevant)
        self.validation = {"members": {n: round(v, 4) for n, v in alone.items()}, "blend": round(value, 4)}
        if self.dampening is None:
            blended = np.asarray(sum(w * member_scores[n] for n, w in weights.items() if w > 0), np.float32)
            counts = np.bincount(first.item_idx, minlength=first.n_items).astype(np.float64)
            reference = self.coverage_reference
            reference_coverage = coverage_at_10(member_scores[reference]) if reference in member_scores else None
            self.dampening, curve = choose_dampening(blended, relevant, counts, reference_coverage)
            self.validation["dampening"] = {
                "chosen": self.dampening,
                "reference": reference,
                "reference_coverage@10": None if reference_coverage is None else round(reference_coverage, 5),
                "curve": curve,
            }
        logger.info("blend weights %s; validation %s", weights, self.validation)
        return weights

    # -- scoring ---------------------------------------------------------------------------
    def _score(self, users: Sequence[UserContext]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(users), self.history.n_items), np.float32)
        seen = [c.items for c in users]
        for name, model in self._models.items():
            out += float((self.weights or {})[name]) * _scaled(model._score(users), seen)
        return dampen(out, self.counts, float(self.dampening or 0.0))

    def _similar(self, item_idx: int) -> npt.NDArray[np.float32]:
        out = np.zeros(self.history.n_items, np.float32)
        for name, model in self._models.items():
            row = model._similar(item_idx).astype(np.float32)[None, :]
            out += float((self.weights or {})[name]) * _scaled(row, [np.asarray([item_idx])])[0]
        return out

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """The blend's own files (ids, params with the weights) and each member under ``members/<name>``."""
        super().save(path)
        for name, model in self._models.items():
            model.save(Path(path) / "members" / name)
        (Path(path) / "validation.json").write_text(json.dumps(self.validation))

    @classmethod
    def load(cls, path: Path) -> Blend:
        """Read a blend written by ``save`` (members by their own ``load``)."""
        model = super().load(path)
        assert isinstance(model, Blend)
        for name, weight in (model.weights or {}).items():
            if weight > 0:
                member = model_class(name).load(Path(path) / "members" / name)
                if not isinstance(member, ItemScorer) or member.history.n_items != model.history.n_items:
                    raise ValueError(f"{path}: blend member {name!r} does not match the blend's catalog")
                model._models[name] = member
        extra = Path(path) / "validation.json"
        if extra.exists():
            model.validation = json.loads(extra.read_text())
        return model
