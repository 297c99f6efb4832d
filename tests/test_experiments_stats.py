"""The statistics themselves, checked by vectorised simulation (all simulations as one matrix).

Each test simulates many experiments whose truth is known and checks an
operating characteristic: false-positive rate, power, CI coverage, SRM
detection, CUPED's variance reduction and the sequential test's error rate
under repeated looks.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from experiments import stats

ALPHA = 0.05


def _welch_of(treatment: np.ndarray, control: np.ndarray) -> stats.Comparison:
    return stats.welch(stats.moments(treatment, axis=1), stats.moments(control, axis=1), ALPHA)


def test_welch_matches_scipy_on_one_sample() -> None:
    rng = np.random.default_rng(1)
    t, c = rng.exponential(3.0, 300), rng.exponential(2.5, 200)
    result = stats.welch(stats.moments(t), stats.moments(c))
    expected = sps.ttest_ind(t, c, equal_var=False)
    assert float(result.p_value) == pytest.approx(expected.pvalue, rel=1e-9)
    ci = expected.confidence_interval(0.95)
    assert (float(result.ci_low), float(result.ci_high)) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert float(result.lift) == pytest.approx(t.mean() / c.mean() - 1)


def test_aa_false_positive_rate_is_near_alpha() -> None:
    """2,000 A/A tests on skewed, watch-minutes-like data: Welch rejects in 3–7 % of them."""
    rng = np.random.default_rng(2)
    sims, n = 2_000, 400
    # Gamma-Poisson mixture: most units watch a little, a few watch a lot.
    control = rng.poisson(rng.gamma(0.8, 40.0, size=(sims, n))).astype(float)
    treatment = rng.poisson(rng.gamma(0.8, 40.0, size=(sims, n))).astype(float)
    result = _welch_of(treatment, control)
    false_positive_rate = np.mean(np.asarray(result.p_value) < ALPHA)
    assert 0.03 <= false_positive_rate <= 0.07, false_positive_rate
    # The p-values of a valid test are uniform under the null.
    assert sps.kstest(np.asarray(result.p_value), "uniform").pvalue > 0.001


def test_planted_lift_is_detected_with_the_expected_power_and_the_lift_ci_covers_it() -> None:
    rng = np.random.default_rng(3)
    sims, n, sigma, mean = 2_000, 400, 10.0, 50.0
    z = sps.norm.ppf(1 - ALPHA / 2)
    delta = (z + sps.norm.ppf(0.8)) * sigma * np.sqrt(2 / n)  # planted for 80 % power
    control = rng.normal(mean, sigma, size=(sims, n))
    treatment = rng.normal(mean + delta, sigma, size=(sims, n))
    result = _welch_of(treatment, control)
    se = sigma * np.sqrt(2 / n)
    expected_power = sps.norm.cdf(delta / se - z) + sps.norm.cdf(-delta / se - z)
    power = np.mean(np.asarray(result.p_value) < ALPHA)
    assert abs(power - expected_power) < 0.04, (power, expected_power)
    true_lift = delta / mean
    covered = (np.asarray(result.lift_ci_low) <= true_lift) & (true_lift <= np.asarray(result.lift_ci_high))
    assert 0.93 <= covered.mean() <= 0.97
    assert np.mean(np.asarray(result.lift)) == pytest.approx(true_lift, abs=0.002)


def test_srm_flags_a_planted_48_52_split_and_rarely_a_fair_one() -> None:
    rng = np.random.default_rng(4)
    n_units, sims = 40_000, 2_000
    skewed = rng.multinomial(n_units, [0.48, 0.52], size=sims)
    fair = rng.multinomial(n_units, [0.5, 0.5], size=sims)
    flagged_skewed = np.asarray(stats.srm_test(skewed, [50, 50]).flagged)
    flagged_fair = np.asarray(stats.srm_test(fair, [50, 50]).flagged)
    assert flagged_skewed.mean() >= 0.99
    assert flagged_fair.mean() <= 0.005
    # Unequal configured weights are honoured: a 20/80 experiment split 20/80 is fine.
    assert not bool(stats.srm_test([2_000, 8_000], [20, 80]).flagged)
    assert bool(stats.srm_test([2_400, 7_600], [20, 80]).flagged)


def _correlated(rng: np.random.Generator, rho: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(0, 1, size=shape)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(0, 1, size=shape)
    return x, y


def test_cuped_reduces_variance_by_rho_squared_and_stays_unbiased() -> None:
    rng = np.random.default_rng(5)
    sims, n, rho, delta = 1_000, 500, 0.7, 0.1
    x, y = _correlated(rng, rho, (sims, 2 * n))
    y[:, :n] += delta  # the first half is the treatment
    adjusted, theta = stats.cuped_adjust(y, x, axis=1)
    raw = _welch_of(y[:, :n], y[:, n:])
    cuped = _welch_of(adjusted[:, :n], adjusted[:, n:])
    reduction = 1 - (np.asarray(cuped.se) / np.asarray(raw.se)) ** 2
    assert np.mean(reduction) == pytest.approx(rho**2, abs=0.03)
    assert np.mean(np.asarray(theta)) == pytest.approx(rho, abs=0.02)
    assert np.mean(np.asarray(cuped.diff)) == pytest.approx(delta, abs=0.005)
    # Spread of the estimates themselves shrinks too, not just the reported SE.
    assert np.std(np.asarray(cuped.diff)) < 0.8 * np.std(np.asarray(raw.diff))
    assert np.mean(np.asarray(cuped.p_value) < ALPHA) > np.mean(np.asarray(raw.p_value) < ALPHA)


def test_cuped_keeps_the_false_positive_rate_and_does_nothing_without_correlation() -> None:
    rng = np.random.default_rng(6)
    sims, n = 1_500, 400
    x, y = _correlated(rng, 0.6, (sims, 2 * n))
    adjusted, _ = stats.cuped_adjust(y, x, axis=1)
    fpr = np.mean(np.asarray(_welch_of(adjusted[:, :n], adjusted[:, n:]).p_value) < ALPHA)
    assert 0.03 <= fpr <= 0.07
    x0, y0 = _correlated(rng, 0.0, (sims, 2 * n))
    adjusted0, _ = stats.cuped_adjust(y0, x0, axis=1)
    reduction = 1 - adjusted0.var(axis=1) / y0.var(axis=1)
    assert abs(np.mean(reduction)) < 0.01


def _sequential_paths(
    rng: np.random.Generator, sims: int, looks: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Naive Welch p and always-valid p at each look, shape (sims, len(looks))."""
    n_max = int(looks[-1])
    control = rng.normal(0, 1, size=(sims, n_max))
    treatment = rng.normal(delta, 1, size=(sims, n_max))
    naive, diffs, var_diffs, tau2 = [], [], [], []
    for n in looks:
        c, t = stats.moments(control[:, :n], axis=1), stats.moments(treatment[:, :n], axis=1)
        result = stats.welch(t, c, ALPHA)
        naive.append(np.asarray(result.p_value))
        diffs.append(np.asarray(result.diff))
        var_diffs.append(np.asarray(result.se) ** 2)
        tau2.append((0.05**2) * np.asarray(c.var))  # the analysis' default: tau = 0.05 control SD
    always_valid = stats.always_valid_p_values(np.stack(diffs, 1), np.stack(var_diffs, 1), np.stack(tau2, 1), axis=1)
    return np.stack(naive, 1), always_valid


def test_always_valid_p_value_holds_alpha_under_repeated_looks_where_peeking_does_not() -> None:
    rng = np.random.default_rng(7)
    looks = np.linspace(200, 4_000, 20).astype(int)
    naive, always_valid = _sequential_paths(rng, 1_000, looks, delta=0.0)
    peeking_error = np.mean((naive < ALPHA).any(axis=1))
    sequential_error = np.mean((always_valid < ALPHA).any(axis=1))
    assert peeking_error > 0.12  # stopping at the first naive p < 0.05 inflates the error rate
    assert sequential_error <= 0.06  # 0.05 plus Monte-Carlo slack
    # Always-valid p-values never increase from one look to the next.
    assert np.all(np.diff(always_valid, axis=1) <= 0)
    # And it still finds a real effect.
    _, with_effect = _sequential_paths(rng, 300, looks, delta=0.12)
    assert np.mean(with_effect[:, -1] < ALPHA) > 0.7


def test_msprt_p_value_is_one_at_no_difference_and_falls_with_evidence() -> None:
    p = stats.msprt_p_value(np.array([0.0, 0.05, 0.1, 0.2]), 0.001, 0.0025)
    assert p[0] == 1.0
    assert np.all(np.diff(p) <= 0)
    assert p[-1] < 1e-3
