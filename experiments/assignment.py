"""Deterministic assignment of units to experiments and variants.

Pure functions of the definitions, the unit and the time:

1. Forced assignments (QA) win over everything else.
2. A unit in a running global holdout gets no experiment in any layer.
3. In each layer, ``bucket(layer_salt, unit)`` picks at most one experiment:
   the running one whose bucket range contains it (ranges are disjoint, so
   experiments of a layer are mutually exclusive; each layer has its own salt,
   so layers are orthogonal). The unit must also match the targeting.
4. ``bucket(experiment salt, unit)`` picks the variant by cumulative weight.
   It does not depend on the allocation, so a ramp-up only adds units and
   never moves an assigned unit to another variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from core.errors import InvalidInputError
from experiments.hashing import bucket, buckets_from_columns, byte_columns
from experiments.spec import GLOBAL_LAYER, Experiment, Kind, Status, Targeting


@dataclass(frozen=True)
class AssignmentContext:
    """What assignment may know about the request.

    Attributes:
        unit_id: the profile id.
        country: ISO-3166 alpha-2 of the request (for targeting).
        device: device class of the request, e.g. ``tv``, ``web``, ``mobile``.
        is_kids: whether the profile is a kids profile.
        is_new: whether the profile is new (has watched nothing yet).
        account_id: the profile's account; needed by experiments whose unit is ``account``.
    """

    unit_id: str
    country: str | None = None
    device: str | None = None
    is_kids: bool = False
    is_new: bool = False
    account_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    """The unit's variant in one experiment (at most one per layer).

    ``payload`` says what to change, e.g. ``{"ranker": "challenger"}``; a
    holdout's payload is empty (serve the defaults). Log ``experiment_key`` and
    ``variant`` on every exposure.
    """

    experiment_key: str
    variant: str
    payload: dict[str, str] = field(default_factory=dict)
    layer: str = ""
    forced: bool = False


def unit_of(experiment: Experiment, context: AssignmentContext) -> str:
    """The id the experiment randomises: the profile id or the account id."""
    if experiment.unit == "profile":
        return context.unit_id
    if not context.account_id:
        raise InvalidInputError(
            f"experiment {experiment.key!r} randomises by account; pass account_id in the AssignmentContext"
        )
    return context.account_id


def matches(targeting: Targeting, context: AssignmentContext) -> bool:
    """Whether the request is eligible under ``targeting``."""
    if targeting.countries and (context.country or "").upper() not in targeting.countries:
        return False
    if targeting.devices and (context.device or "").lower() not in targeting.devices:
        return False
    if (targeting.kids == "only" and not context.is_kids) or (targeting.kids == "exclude" and context.is_kids):
        return False
    return not (
        (targeting.profiles == "new" and not context.is_new) or (targeting.profiles == "existing" and context.is_new)
    )


def variant_of(experiment: Experiment, unit_id: str) -> str:
    """The variant ``unit_id`` gets if it is in ``experiment`` (forced, else hashed)."""
    forced = experiment.forced.get(unit_id)
    if forced is not None:
        return forced
    b = bucket(experiment.effective_salt, unit_id)
    for variant, bound in zip(experiment.variants, experiment.variant_bounds, strict=True):
        if b < bound:
            return variant.name
    return experiment.variants[-1].name  # unreachable: the last bound is N_BUCKETS


def in_range(experiment: Experiment, unit_id: str) -> bool:
    """Whether the unit's layer bucket falls in the experiment's traffic range."""
    lo, hi = experiment.bucket_range
    return lo <= bucket(experiment.effective_layer_salt, unit_id) < hi


def global_holdouts(experiments: Iterable[Experiment]) -> list[Experiment]:
    """The running holdouts of the reserved global layer."""
    return [e for e in experiments if e.kind == Kind.HOLDOUT and e.layer == GLOBAL_LAYER and e.status == Status.RUNNING]


def assign_one(experiment: Experiment, unit_id: str, holdouts: Sequence[Experiment] = ()) -> str | None:
    """The variant of one unit in one experiment, or ``None`` when the unit is outside it.

    Considers forced assignments, the traffic range and the given global
    ``holdouts``; not the status, dates or targeting (no request context), so
    it also answers "who would get what" for a draft.
    """
    if unit_id in experiment.forced:
        return experiment.forced[unit_id]
    if any(in_range(h, unit_id) for h in holdouts) or not in_range(experiment, unit_id):
        return None
    return variant_of(experiment, unit_id)


def assign_many(
    experiment: Experiment, unit_ids: npt.ArrayLike, holdouts: Sequence[Experiment] = ()
) -> npt.NDArray[np.object_]:
    """``assign_one`` over many units at once (vectorised).

    Args:
        experiment: the definition.
        unit_ids: shape ``(n,)`` str ids.
        holdouts: global holdouts whose units are outside every experiment.

    Returns:
        shape ``(n,)`` object array of variant names, ``None`` for units outside.
    """
    ids = np.asarray(unit_ids)
    columns = byte_columns(ids)  # shared by the layer, holdout and variant hashes
    lo, hi = experiment.bucket_range
    layer_b = buckets_from_columns(experiment.effective_layer_salt, columns)
    inside = (layer_b >= lo) & (layer_b < hi)
    for holdout in holdouts:
        h_lo, h_hi = holdout.bucket_range
        h_b = buckets_from_columns(holdout.effective_layer_salt, columns)
        inside &= ~((h_b >= h_lo) & (h_b < h_hi))
    variant_b = buckets_from_columns(experiment.effective_salt, columns)
    index = np.searchsorted(np.asarray(experiment.variant_bounds), variant_b, side="right")
    index[~inside] = len(experiment.variants)
    names = np.array([v.name for v in experiment.variants] + [None], dtype=object)
    result = names[index]
    if experiment.forced:
        as_str = ids if ids.dtype.kind == "U" else ids.astype(str)
        for i in np.flatnonzero(np.isin(as_str, np.array(list(experiment.forced)))):
            result[i] = experiment.forced[str(as_str[i])]
    return result


def _assignment(experiment: Experiment, variant: str, forced: bool = False) -> Assignment:
    payload = next(v.payload for v in experiment.variants if v.name == variant)
    return Assignment(experiment.key, variant, dict(payload), experiment.layer, forced)


def assign(
    experiments: Sequence[Experiment], context: AssignmentContext, *, now: datetime | None = None
) -> list[Assignment]:
    """Every experiment the request is in: at most one per layer, sorted by layer.

    Args:
        experiments: all definitions (drafts and stopped ones are skipped,
            except for units forced into a draft for QA).
        context: the unit and what targeting looks at.
        now: the request time; default the current UTC time. Pass it to make
            the call fully deterministic.

    Returns:
        One ``Assignment`` per layer the unit is in. A unit in a global
        holdout gets only that holdout's assignment (plus forced ones).
    """
    moment = now or datetime.now(UTC)
    result: dict[str, Assignment] = {}
    for experiment in experiments:
        if experiment.forced and experiment.status != Status.STOPPED:
            unit = unit_of(experiment, context)
            if unit in experiment.forced:
                result.setdefault(experiment.layer, _assignment(experiment, experiment.forced[unit], forced=True))
    active = [e for e in experiments if e.is_active(moment)]
    for holdout in (e for e in active if e.layer == GLOBAL_LAYER):
        if holdout.layer not in result and matches(holdout.targeting, context):
            unit = unit_of(holdout, context)
            if in_range(holdout, unit):
                result[holdout.layer] = _assignment(holdout, variant_of(holdout, unit))
                return [result[layer] for layer in sorted(result)]
    layer_buckets: dict[tuple[str, str], int] = {}
    for experiment in active:
        if experiment.layer in result or experiment.layer == GLOBAL_LAYER:
            continue
        unit = unit_of(experiment, context)
        cache_key = (experiment.effective_layer_salt, unit)
        if cache_key not in layer_buckets:
            layer_buckets[cache_key] = bucket(experiment.effective_layer_salt, unit)
        lo, hi = experiment.bucket_range
        if lo <= layer_buckets[cache_key] < hi and matches(experiment.targeting, context):
            result[experiment.layer] = _assignment(experiment, variant_of(experiment, unit))
    return [result[layer] for layer in sorted(result)]
