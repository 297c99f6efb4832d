"""The promotion rule: a challenger replaces the champion only if it beats it on validation.

Kept free of MLflow so the rule itself is a pure, obvious function; ``training.registry``
applies it to registered model versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The validation metric that decides promotion (of the list served: ranked, or the primary candidate's).
PROMOTION_METRIC = "ndcg@10"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger becomes champion, and a sentence saying why."""

    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None


def decide(
    challenger: float,
    champion: float | None,
    *,
    metric: str = PROMOTION_METRIC,
    min_improvement: float = 0.0,
) -> PromotionDecision:
    """Apply the rule: no champion yet → promote; else promote only on a strict improvement.

    Args:
        challenger: the new version's validation metric (higher is better).
        champion: the current champion's value, or ``None`` when there is no champion
            (or its value is unknown, e.g. registered by hand).
        metric: the metric's name, for the reason text.
        min_improvement: how much the challenger must gain (absolute) to win; 0 means any gain.

    Raises:
        ValueError: the challenger's value is not a finite number.
    """
    if not math.isfinite(challenger):
        raise ValueError(f"the challenger's {metric} must be a finite number, got {challenger!r}")
    if champion is None or not math.isfinite(champion):
        return PromotionDecision(True, f"no champion with a known {metric} yet", metric, challenger, champion)
    if challenger > champion + min_improvement:
        reason = f"challenger {metric} {challenger:.4f} beats champion {champion:.4f}"
        return PromotionDecision(True, reason, metric, challenger, champion)
    margin = f" by more than {min_improvement:.4f}" if min_improvement > 0 else ""
    reason = f"challenger {metric} {challenger:.4f} does not beat champion {champion:.4f}{margin}; champion kept"
    return PromotionDecision(False, reason, metric, challenger, champion)
