"""The statistics of an A/B analysis, on summary statistics and numpy broadcasting.

Every function takes means, variances and counts (or arrays with an ``axis``)
and broadcasts, so the same code analyses one experiment in a report and
10,000 simulated experiments in a test.

* ``welch``: difference of means with Welch's t CI and p-value, and the
  relative lift ``mean_t / mean_c - 1`` with a delta-method CI.
* ``cuped_adjust``: CUPED (Deng et al. 2013), ``y - theta (x - mean x)`` with
  ``theta = cov(y, x) / var(x)`` pooled over all variants.
* ``msprt_p_value``: the always-valid p-value of a normal-mixture sequential
  probability ratio test (Johari et al. 2017); the running minimum over looks
  may be checked after every look without inflating the error rate.
* ``srm_test``: chi-square test of unit counts against the configured weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]
ArrayOrFloat = FloatArray | float

#: An SRM is flagged below this p-value: strict, because the check runs on every analysis.
SRM_ALPHA = 1e-3


@dataclass(frozen=True)
class Moments:
    """Count, mean and sample variance (ddof=1) of a metric, broadcastable."""

    n: ArrayOrFloat
    mean: ArrayOrFloat
    var: ArrayOrFloat


def moments(values: npt.ArrayLike, axis: int = -1) -> Moments:
    """Moments of ``values`` along ``axis``, ignoring NaN (units without a value)."""
    array = np.asarray(values, dtype=np.float64)
    n = np.sum(~np.isnan(array), axis=axis).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(array, axis=axis) / n
        var = np.nansum((array - np.expand_dims(mean, axis)) ** 2, axis=axis) / (n - 1)
    return Moments(n=n, mean=mean, var=var)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one metric (every field broadcasts like the inputs)."""

    diff: ArrayOrFloat
    se: ArrayOrFloat
    ci_low: ArrayOrFloat
    ci_high: ArrayOrFloat
    p_value: ArrayOrFloat
    lift: ArrayOrFloat
    lift_ci_low: ArrayOrFloat
    lift_ci_high: ArrayOrFloat
    df: ArrayOrFloat


def welch(treatment: Moments, control: Moments, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test and the lift's delta-method CI.

    The lift's variance is ``var_t/(n_t m_c^2) + m_t^2 var_c/(n_c m_c^4)``,
    the first-order (delta method) variance of ``m_t / m_c``; its CI uses
    the same t quantile as the difference.
    """
    vt = np.asarray(treatment.var) / np.asarray(treatment.n)
    vc = np.asarray(control.var) / np.asarray(control.n)
    mt, mc = np.asarray(treatment.mean), np.asarray(control.mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(vt + vc)
        df = (vt + vc) ** 2 / (vt**2 / (np.asarray(treatment.n) - 1) + vc**2 / (np.asarray(control.n) - 1))
        diff = mt - mc
        t = diff / se
        p = 2 * sps.t.sf(np.abs(t), df)
        q = sps.t.ppf(1 - alpha / 2, df)
        lift = mt / mc - 1
        lift_se = np.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    return Comparison(
        diff=diff,
        se=se,
        ci_low=diff - q * se,
        ci_high=diff + q * se,
        p_value=p,
        lift=lift,
        lift_ci_low=lift - q * lift_se,
        lift_ci_high=lift + q * lift_se,
        df=df,
    )


def cuped_theta(y: npt.ArrayLike, x: npt.ArrayLike, axis: int = -1) -> ArrayOrFloat:
    """``cov(y, x) / var(x)`` along ``axis`` (0 when ``x`` is constant)."""
    ya, xa = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    xc = xa - xa.mean(axis=axis, keepdims=True)
    yc = ya - ya.mean(axis=axis, keepdims=True)
    var_x = (xc**2).sum(axis=axis)
    cov = (xc * yc).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.where(var_x > 0, cov / np.where(var_x > 0, var_x, 1), 0.0)
    return theta


def cuped_adjust(y: npt.ArrayLike, x: npt.ArrayLike, axis: int = -1) -> tuple[FloatArray, ArrayOrFloat]:
    """CUPED-adjusted outcomes ``y - theta (x - mean x)`` and ``theta``.

    Pass the outcomes and covariates of *all* variants together: one pooled
    ``theta`` keeps the adjusted difference of means unbiased.
    """
    ya, xa = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    theta = cuped_theta(ya, xa, axis=axis)
    adjusted = ya - np.expand_dims(theta, axis) * (xa - xa.mean(axis=axis, keepdims=True))
    return adjusted, theta


def msprt_p_value(diff: npt.ArrayLike, var_diff: npt.ArrayLike, tau2: npt.ArrayLike) -> FloatArray:
    """The mSPRT's p-value at one look: ``min(1, 1 / Lambda)``.

    ``Lambda = sqrt(V / (V + tau2)) * exp(tau2 * diff^2 / (2 V (V + tau2)))``
    is the likelihood ratio of "difference ~ N(0, tau2)" against "difference
    = 0", for an estimated difference ``diff`` with variance ``V``. Take the
    running minimum over looks (``always_valid_p_values``) for the always-valid
    p-value.
    """
    d = np.asarray(diff, dtype=np.float64)
    v = np.asarray(var_diff, dtype=np.float64)
    t2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_lambda = 0.5 * np.log(v / (v + t2)) + t2 * d**2 / (2 * v * (v + t2))
        p = np.minimum(1.0, np.exp(-log_lambda))
    return np.where(np.isnan(p), 1.0, p)


def always_valid_p_values(
    diffs: npt.ArrayLike, var_diffs: npt.ArrayLike, tau2: npt.ArrayLike, axis: int = -1
) -> FloatArray:
    """Running minimum over looks (along ``axis``) of ``msprt_p_value``."""
    return np.minimum.accumulate(msprt_p_value(diffs, var_diffs, tau2), axis=axis)


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check: observed units against the configured weights."""

    chi2: ArrayOrFloat
    p_value: ArrayOrFloat
    flagged: npt.NDArray[np.bool_] | bool
    expected: FloatArray


def srm_test(counts: npt.ArrayLike, weights: npt.ArrayLike, alpha: float = SRM_ALPHA) -> SrmResult:
    """Pearson chi-square of ``counts`` (shape ``(..., k)``) against ``weights`` (shape ``(k,)``)."""
    observed = np.asarray(counts, dtype=np.float64)
    shares = np.asarray(weights, dtype=np.float64)
    shares = shares / shares.sum()
    expected = observed.sum(axis=-1, keepdims=True) * shares
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.sum(np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0), axis=-1)
    p = sps.chi2.sf(chi2, df=max(len(shares) - 1, 1))
    return SrmResult(chi2=chi2, p_value=p, flagged=p < alpha, expected=expected)
