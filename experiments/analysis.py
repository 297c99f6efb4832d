"""Analyse an experiment from its exposures and the watch events that followed.

Pipeline: exposures of the experiment → one row per unit (variant, first
exposure), leaving out QA-forced units, units seen in several variants and
variants the definition does not know → per-unit outcomes after the first
exposure and in the pre-period before it (``experiments.outcomes``) → per
metric and variant against control: Welch CI and p-value, lift with a
delta-method CI, CUPED with the pre-period metric as covariate, and an
always-valid mSPRT p-value over daily looks → sample-ratio-mismatch check →
guardrails: a guardrail metric that got significantly worse (``GuardrailCheck``)
is a breach, reported in the warnings. QoE metrics (``rebuffer_ratio``,
``startup_ms``...) come from the players' playback reports (``experiments.qoe``).

The mSPRT's mixing variance is ``tau^2 = (msprt_tau * sd)^2`` with ``sd`` the
control's standard deviation of the metric at that look and ``msprt_tau =
0.05`` by default: the mixture centres its mass on effects of about 5 % of a
standard deviation, the size of effect ranker changes have. Any ``tau`` keeps
the error rate; it only moves where the test is most powerful.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from tqdm import tqdm

from core.errors import InvalidInputError, NotFoundError
from core.tables import EXPOSURES
from experiments import stats
from experiments.outcomes import daily_totals, outcomes_from_daily, outcomes_in_window
from experiments.qoe import qoe_daily_totals, qoe_from_daily, qoe_in_window, sessions_frame
from experiments.spec import HIGHER_IS_WORSE, Experiment

logger = logging.getLogger(__name__)

#: At most this many sequential looks are evaluated (daily, or every few days for long experiments).
MAX_LOOKS = 60

_EXPOSURE_KEY = list(EXPOSURES.primary_key)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="null")


class MetricResult(_Out):
    """One metric of one treatment variant against control.

    ``lift`` and its CI are relative (0.05 = +5 %); ``diff`` is absolute in the
    metric's unit. ``cuped_*`` use the pre-period covariate;
    ``variance_reduction`` is ``1 - (se_cuped / se_raw)^2``.
    """

    metric: str
    variant: str
    control: str
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    diff: float
    diff_ci: tuple[float, float]
    lift: float
    lift_ci: tuple[float, float]
    p_value: float
    significant: bool
    cuped_diff: float
    cuped_lift: float
    cuped_lift_ci: tuple[float, float]
    cuped_p_value: float
    cuped_theta: float
    variance_reduction: float
    sequential_p_value: float
    looks: int


class SrmCheck(_Out):
    """Units per variant against the configured weights; flagged at p < 0.001."""

    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    flagged: bool


class GuardrailCheck(_Out):
    """Whether a guardrail metric got significantly worse for a variant (Welch test at ``alpha``).

    ``worse_when`` is the direction that hurts (``higher`` for ``rebuffer_ratio``,
    ``lower`` for ``plays``); a breach is a change that way with ``p_value < alpha``.
    """

    metric: str
    variant: str
    worse_when: Literal["higher", "lower"]
    diff: float
    lift: float
    p_value: float
    breached: bool


class Report(_Out):
    """Everything an analysis found; ``to_json`` is what ``marquee experiments analyze`` writes."""

    experiment_key: str
    hypothesis: str
    unit: str
    control: str
    primary_metric: str
    guardrails: list[str]
    alpha: float
    pre_period_days: float
    msprt_tau: float
    start: datetime | None
    end: datetime | None
    units: dict[str, int]
    excluded: dict[str, int]
    srm: SrmCheck
    results: list[MetricResult]
    guardrail_checks: list[GuardrailCheck] = []
    warnings: list[str]

    @property
    def breaches(self) -> list[GuardrailCheck]:
        """The guardrail checks that failed."""
        return [check for check in self.guardrail_checks if check.breached]

    def to_json(self) -> str:
        """The report as indented JSON (NaN and infinities become ``null``)."""
        return self.model_dump_json(indent=2)

    def result(self, metric: str, variant: str) -> MetricResult:
        """The result of ``metric`` for ``variant``."""
        for item in self.results:
            if item.metric == metric and item.variant == variant:
                return item
        raise NotFoundError(f"no result for metric {metric!r} and variant {variant!r} in the report")


def _f(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))


def _units_frame(
    experiment: Experiment, exposures: pd.DataFrame, unit_of_profile: pd.Series | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per analysed unit (unit_id, variant, first_exposure) and the counts left out, by reason."""
    rows = exposures[exposures["experiment_key"] == experiment.key]
    rows = rows.drop_duplicates(subset=[c for c in _EXPOSURE_KEY if c in rows.columns])
    if rows.empty:
        raise NotFoundError(
            f"no exposures of experiment {experiment.key!r}; the API logs them to the lake table "
            "'exposures' when a variant changes what a profile is shown"
        )
    excluded: dict[str, int] = {}
    rows = rows.assign(ts=pd.to_datetime(rows["ts"], utc=True))
    if unit_of_profile is not None:
        rows = rows.assign(unit_id=rows["profile_id"].map(unit_of_profile))
        excluded["profile_without_account"] = int(rows["unit_id"].isna().sum())
        rows = rows.dropna(subset=["unit_id"])
    else:
        rows = rows.assign(unit_id=rows["profile_id"])
    grouped = rows.groupby("unit_id", sort=True).agg(
        variant=("variant", "first"), variants=("variant", "nunique"), first_exposure=("ts", "min")
    )
    known = {v.name for v in experiment.variants}
    several = grouped["variants"] > 1
    forced = grouped.index.isin(list(experiment.forced))
    unknown = ~grouped["variant"].isin(known) & ~several
    excluded["several_variants"] = int(several.sum())
    excluded["forced_qa"] = int((forced & ~several).sum())
    excluded["unknown_variant"] = int(unknown.sum())
    keep = ~several & ~forced & ~unknown
    units = grouped[keep].reset_index()[["unit_id", "variant", "first_exposure"]]
    return units, {k: v for k, v in excluded.items() if v}


def _events_frame(events: pd.DataFrame, unit_of_profile: pd.Series | None) -> pd.DataFrame:
    needed = ["profile_id", "title_id", "ts", "position_s", "duration_s"]
    missing = [c for c in needed if c not in events.columns]
    if missing:
        raise InvalidInputError(f"watch events lack column(s) {missing}; pass the lake table 'watch_events'")
    frame = events[needed].assign(ts=pd.to_datetime(events["ts"], utc=True))
    if unit_of_profile is None:
        return frame.assign(unit_id=frame["profile_id"])
    return frame.assign(unit_id=frame["profile_id"].map(unit_of_profile)).dropna(subset=["unit_id"])


def _metric_arrays(
    units: pd.DataFrame, post: pd.DataFrame, pre: pd.DataFrame | None, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(variant, y, x) for units with a defined outcome; x's missing values take x's mean."""
    y = post[metric].to_numpy(np.float64)
    x = pre[f"pre_{metric}"].to_numpy(np.float64) if pre is not None else np.zeros_like(y)
    defined = ~np.isnan(y)
    x = x[defined]
    if np.isnan(x).any():
        fill = np.nanmean(x) if (~np.isnan(x)).any() else 0.0
        x = np.where(np.isnan(x), fill, x)
    return units["variant"].to_numpy()[defined], y[defined], x


def _look_times(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """UTC midnights after ``start`` and before ``end`` (thinned to ``MAX_LOOKS``), then ``end``."""
    first = start.floor("D") + pd.Timedelta(days=1)
    days = max(0, math.ceil((end - first) / pd.Timedelta(days=1)))
    step = max(1, math.ceil(days / MAX_LOOKS))
    looks = [first + pd.Timedelta(days=d) for d in range(0, days, step)]
    return [*(look for look in looks if look < end), end]


def _sequential_p(
    units: pd.DataFrame,
    daily: pd.DataFrame,
    end: pd.Timestamp,
    metrics: list[str],
    control: str,
    tau: float,
    daily_qoe: pd.DataFrame | None = None,
) -> tuple[dict[tuple[str, str], float], int]:
    """Always-valid p-value per (metric, variant) after daily looks up to ``end``.

    Looks fall on UTC midnights, so a day's viewings are either wholly seen by
    a look or not at all, and the daily totals are computed once.
    """
    looks = _look_times(units["first_exposure"].min(), end)
    running: dict[tuple[str, str], float] = {}
    for look in tqdm(looks, desc="sequential looks", unit="look", disable=None, leave=False):
        seen = units[units["first_exposure"] < look]
        if seen.empty:
            continue
        post = outcomes_from_daily(seen["unit_id"], daily[daily["day"] < look] if look < end else daily)
        if daily_qoe is not None:
            qoe_days = daily_qoe[daily_qoe["day"] < look] if look < end else daily_qoe
            post = post.join(qoe_from_daily(seen["unit_id"], qoe_days))
        for metric in metrics:
            variants, y, _ = _metric_arrays(seen, post, None, metric)
            c = stats.moments(y[variants == control])
            for variant in sorted(set(variants) - {control}):
                t = stats.moments(y[variants == variant])
                var_diff = _f(t.var) / _f(t.n) + _f(c.var) / _f(c.n)
                tau2 = (tau * math.sqrt(_f(c.var))) ** 2 if _f(c.n) > 1 else float("nan")
                p = _f(stats.msprt_p_value(_f(t.mean) - _f(c.mean), var_diff, tau2))
                running[(metric, variant)] = min(running.get((metric, variant), 1.0), p)
    return running, len(looks)


def analyze(
    experiment: Experiment,
    exposures_df: pd.DataFrame,
    events_df: pd.DataFrame,
    pre_period_days: float = 14,
    *,
    profiles_df: pd.DataFrame | None = None,
    playback_df: pd.DataFrame | None = None,
    end: datetime | None = None,
    alpha: float = 0.05,
    msprt_tau: float = 0.05,
) -> Report:
    """Analyse ``experiment`` per variant against its control.

    Args:
        experiment: the definition (variants, weights, control, metrics, unit).
        exposures_df: the lake's ``exposures`` rows (any experiments; filtered here).
        events_df: the lake's ``watch_events`` rows.
        pre_period_days: length of the CUPED pre-period before each unit's first exposure; 0 disables CUPED.
        profiles_df: ``profile_id`` and ``account_id``; required when the unit is ``account``.
        playback_df: the lake's ``playback_reports`` rows; needed for QoE metrics (``core.qoe.QOE_METRICS``).
        end: end of the outcome window; default the experiment's end or the last data.
        alpha: significance level of the CIs and of ``significant``.
        msprt_tau: the mSPRT's mixing standard deviation, in control standard deviations.

    Raises:
        NotFoundError: the experiment has no exposures.
        InvalidInputError: inputs miss columns or arguments are out of range.
    """
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be between 0 and 1, got {alpha}")
    if pre_period_days < 0:
        raise InvalidInputError(f"pre_period_days must be 0 or more, got {pre_period_days}")
    if msprt_tau <= 0:
        raise InvalidInputError(f"msprt_tau must be positive, got {msprt_tau}")
    unit_of_profile = None
    if experiment.unit == "account":
        if profiles_df is None or not {"profile_id", "account_id"} <= set(profiles_df.columns):
            raise InvalidInputError(
                f"experiment {experiment.key!r} randomises accounts; pass profiles_df with profile_id and account_id"
            )
        unit_of_profile = profiles_df.drop_duplicates("profile_id").set_index("profile_id")["account_id"]
    units, excluded = _units_frame(experiment, exposures_df, unit_of_profile)
    events = _events_frame(events_df, unit_of_profile)
    data_end = max(units["first_exposure"].max(), events["ts"].max() if not events.empty else pd.NaT)
    end_ts = pd.Timestamp(end) if end is not None else data_end + pd.Timedelta(milliseconds=1)
    if end_ts.tzinfo is None:
        end_ts = end_ts.tz_localize("UTC")
    if end is None and experiment.end is not None:
        end_ts = min(end_ts, pd.Timestamp(experiment.end))
    units = units[units["first_exposure"] < end_ts].reset_index(drop=True)
    if units.empty:
        raise NotFoundError(
            f"no unit of experiment {experiment.key!r} was exposed before the end of the window ({end_ts}); "
            "pass a later end"
        )
    units = units.assign(end=end_ts, pre_start=units["first_exposure"] - pd.Timedelta(days=pre_period_days))
    daily = daily_totals(units, events, "first_exposure", "end")
    post = outcomes_from_daily(units["unit_id"], daily)
    pre = outcomes_in_window(units, events, "pre_start", "first_exposure", prefix="pre_")
    metrics = list(dict.fromkeys([experiment.metrics.primary, *experiment.metrics.guardrails]))
    daily_qoe = None
    if any(m not in post.columns for m in metrics):
        empty = pd.DataFrame() if playback_df is None else playback_df
        sessions = sessions_frame(empty, unit_of_profile)
        daily_qoe = qoe_daily_totals(units, sessions, "first_exposure", "end")
        post = post.join(qoe_from_daily(units["unit_id"], daily_qoe))
        pre = pre.join(qoe_in_window(units, sessions, "pre_start", "first_exposure", prefix="pre_"))

    control = experiment.control_variant
    names = [v.name for v in experiment.variants]
    counts = units["variant"].value_counts()
    unit_counts = {name: int(counts.get(name, 0)) for name in names}
    srm = stats.srm_test([unit_counts[n] for n in names], [v.weight for v in experiment.variants])
    srm_check = SrmCheck(
        counts=unit_counts,
        expected={n: _f(e) for n, e in zip(names, np.asarray(srm.expected), strict=True)},
        chi2=_f(srm.chi2),
        p_value=_f(srm.p_value),
        flagged=bool(srm.flagged),
    )
    sequential, looks = _sequential_p(units, daily, end_ts, metrics, control, msprt_tau, daily_qoe)
    results = []
    for metric in metrics:
        variants, y, x = _metric_arrays(units, post, pre if pre_period_days > 0 else None, metric)
        adjusted, theta = stats.cuped_adjust(y, x) if len(y) else (y, 0.0)
        c, c_adj = stats.moments(y[variants == control]), stats.moments(adjusted[variants == control])
        for variant in (n for n in names if n != control):
            t, t_adj = stats.moments(y[variants == variant]), stats.moments(adjusted[variants == variant])
            raw, cuped = stats.welch(t, c, alpha), stats.welch(t_adj, c_adj, alpha)
            reduction = 1 - (_f(cuped.se) / _f(raw.se)) ** 2 if _f(raw.se) > 0 else float("nan")
            results.append(
                MetricResult(
                    metric=metric,
                    variant=variant,
                    control=control,
                    n_control=int(_f(c.n)),
                    n_treatment=int(_f(t.n)),
                    mean_control=_f(c.mean),
                    mean_treatment=_f(t.mean),
                    diff=_f(raw.diff),
                    diff_ci=(_f(raw.ci_low), _f(raw.ci_high)),
                    lift=_f(raw.lift),
                    lift_ci=(_f(raw.lift_ci_low), _f(raw.lift_ci_high)),
                    p_value=_f(raw.p_value),
                    significant=bool(_f(raw.p_value) < alpha),
                    cuped_diff=_f(cuped.diff),
                    cuped_lift=_f(cuped.diff) / _f(c.mean) if _f(c.mean) else float("nan"),
                    cuped_lift_ci=(
                        (_f(cuped.ci_low) / _f(c.mean), _f(cuped.ci_high) / _f(c.mean))
                        if _f(c.mean)
                        else (float("nan"), float("nan"))
                    ),
                    cuped_p_value=_f(cuped.p_value),
                    cuped_theta=_f(theta),
                    variance_reduction=reduction,
                    sequential_p_value=sequential.get((metric, variant), 1.0),
                    looks=looks,
                )
            )
    checks = _guardrail_checks(results, experiment.metrics.guardrails, alpha)
    warnings = [
        f"guardrail breached: {c.metric} got worse ({'rose' if c.worse_when == 'higher' else 'fell'} "
        f"{c.lift * 100:+.2f}%, p={c.p_value:.2g}) for variant {c.variant!r}"
        for c in checks
        if c.breached
    ]
    if daily_qoe is not None and daily_qoe.empty:
        warnings.append("no playback reports in the window: the QoE metrics are undefined")
    if srm_check.flagged:
        warnings.append(
            f"sample ratio mismatch (p={srm_check.p_value:.2g}): units per variant {unit_counts} do not match "
            "the weights; find the cause (assignment, logging, bots) before trusting any result"
        )
    if excluded.get("several_variants"):
        warnings.append(f"{excluded['several_variants']} unit(s) were exposed to several variants and left out")
    small = [n for n, k in unit_counts.items() if k < 2]
    if small:
        warnings.append(f"variant(s) {small} have fewer than 2 units; their statistics are undefined")
    logger.info("analysed %s: %d units, %d results", experiment.key, len(units), len(results))
    return Report(
        experiment_key=experiment.key,
        hypothesis=experiment.hypothesis,
        unit=experiment.unit,
        control=control,
        primary_metric=experiment.metrics.primary,
        guardrails=list(experiment.metrics.guardrails),
        alpha=alpha,
        pre_period_days=pre_period_days,
        msprt_tau=msprt_tau,
        start=units["first_exposure"].min().floor("us").to_pydatetime(),
        end=end_ts.floor("us").to_pydatetime(),
        units=unit_counts,
        excluded=excluded,
        srm=srm_check,
        results=results,
        guardrail_checks=checks,
        warnings=warnings,
    )


def _guardrail_checks(results: list[MetricResult], guardrails: list[str], alpha: float) -> list[GuardrailCheck]:
    """Each guardrail of each variant: breached when it moved the harmful way with p < alpha."""
    checks = []
    for row in results:
        if row.metric not in guardrails:
            continue
        higher_is_worse = HIGHER_IS_WORSE[row.metric]
        worse = row.diff > 0 if higher_is_worse else row.diff < 0
        checks.append(
            GuardrailCheck(
                metric=row.metric,
                variant=row.variant,
                worse_when="higher" if higher_is_worse else "lower",
                diff=row.diff,
                lift=row.lift,
                p_value=row.p_value,
                breached=bool(worse and row.p_value < alpha),
            )
        )
    return checks
