"""The statistics of the audit: interval limits, the ε bound's validity and power, ROC figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from privacy.audit import AuditError, epsilon_from_rates, epsilon_lower_bound, score_attack
from privacy.audit.bounds import clopper_pearson_lower, clopper_pearson_upper
from privacy.audit.roc import bootstrap_ci, supports_fpr, tpr_at_fpr


def gaussian_dp_epsilon(mu: float, delta: float) -> float:
    """Exact ε(δ) of μ-Gaussian DP (Dong, Roth, Su 2019): the truth the bound must respect."""

    def gap(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return float(brentq(gap, 0.0, 200.0))


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 50), (25, 50), (49, 50), (50, 50)])
def test_clopper_pearson_matches_scipys_exact_interval(k: int, n: int) -> None:
    # A one-sided limit at alpha is the two-sided exact limit at confidence 1 - 2 alpha.
    ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
    assert clopper_pearson_upper(k, n, 0.05) == pytest.approx(ci.high, abs=1e-9)
    assert clopper_pearson_lower(k, n, 0.05) == pytest.approx(ci.low, abs=1e-9)


def test_epsilon_from_rates_is_the_dp_inequality() -> None:
    assert epsilon_from_rates(0.1, 0.1, 0.0) == pytest.approx(math.log(9))
    assert epsilon_from_rates(0.05, 0.5, 0.0) == pytest.approx(math.log(0.5 / 0.05))
    # The symmetric form: few false negatives prove as much as few false positives.
    assert epsilon_from_rates(0.5, 0.05, 0.0) == pytest.approx(math.log(0.5 / 0.05))
    assert epsilon_from_rates(0.5, 0.5, 0.0) == 0.0  # a coin flip proves nothing
    assert epsilon_from_rates(0.0, 0.2, 0.0) == math.inf
    assert epsilon_from_rates(0.1, 0.1, 0.5) < math.log(9)  # δ absorbs part of the gap


def test_bound_on_perfect_separation_is_limited_by_the_sample() -> None:
    members, nonmembers = np.arange(5000.0, 6000.0), np.arange(1000.0)
    bound = epsilon_lower_bound(members, nonmembers, delta=0.0, alpha=0.05, seed=0)
    # Zero errors among 500 evaluation records each: the limit comes from the interval only.
    fpr_hi = clopper_pearson_upper(0, 500, 0.025)
    assert bound.lower == pytest.approx(math.log((1 - fpr_hi) / fpr_hi), rel=1e-6)
    assert bound.upper == math.inf and bound.estimate == math.inf
    assert bound.n_members == 500 and bound.n_nonmembers == 500


def test_bound_is_rarely_positive_when_scores_carry_no_membership() -> None:
    rng = np.random.default_rng(7)
    lows = [
        epsilon_lower_bound(rng.normal(size=300), rng.normal(size=300), delta=1e-5, seed=i).lower
        for i in range(200)
    ]
    # At 95% confidence at most 5% of null audits may claim leakage; selection on a
    # separate half keeps the best-of-many-thresholds choice from inflating that.
    assert np.mean(np.array(lows) > 0) <= 0.05


@pytest.mark.parametrize("mu", [1.0, 3.0])
def test_bound_never_exceeds_the_true_epsilon_of_a_gaussian_mechanism(mu: float) -> None:
    truth = gaussian_dp_epsilon(mu, 1e-5)
    rng = np.random.default_rng(int(mu * 10))
    lows = np.array(
        [
            epsilon_lower_bound(
                rng.normal(mu, 1.0, size=1500), rng.normal(size=1500), delta=1e-5, seed=i
            ).lower
            for i in range(60)
        ]
    )
    assert np.mean(lows > truth) <= 0.05
    assert lows.mean() > 0.3 * mu  # and it has power: a real gap shows up


def test_bound_rejects_unusable_scores() -> None:
    ok = np.arange(10.0)
    with pytest.raises(AuditError, match="at least 4"):
        epsilon_lower_bound(ok[:3], ok, delta=1e-5)
    with pytest.raises(AuditError, match="NaN"):
        epsilon_lower_bound(np.r_[ok, np.nan], ok, delta=1e-5)
    with pytest.raises(AuditError, match="delta"):
        epsilon_lower_bound(ok, ok, delta=1.5)


def test_tpr_at_low_fpr_counts_only_thresholds_below_the_rate() -> None:
    nonmembers = np.arange(100.0)  # scores 0..99
    members = np.r_[np.full(30, 200.0), np.full(70, 50.5)]
    # One false positive (score 99) is 1% FPR: the 30 top members are caught at that rate.
    assert tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(0.30)
    assert tpr_at_fpr(members, nonmembers, 0.5) == pytest.approx(1.0)
    assert supports_fpr(100, 0.01) and not supports_fpr(999, 0.001)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for n in (100, 1600):
        m, o = rng.normal(0.5, 1, n), rng.normal(0, 1, n)
        (lo, hi), (tlo, thi) = bootstrap_ci(
            m, o, target_fpr=0.01, resamples=300, confidence=0.95, seed=0
        )
        assert lo <= score_attack("x", m, o, delta=1e-5, bootstrap=300).auc <= hi
        assert 0.0 <= tlo <= thi <= 1.0
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_score_attack_reports_every_figure() -> None:
    rng = np.random.default_rng(0)
    res = score_attack("loss", rng.normal(1, 1, 1200), rng.normal(0, 1, 1100), delta=1e-5)
    assert 0.7 < res.auc < 0.8
    assert res.auc_ci[0] < res.auc < res.auc_ci[1]
    assert res.tpr_at_01pct_fpr is not None  # 1,100 non-members resolve 0.1% FPR
    assert res.epsilon_ci[0] == res.epsilon_lower_bound <= res.epsilon_estimate
    d = res.to_dict()
    assert d["n_members"] == 1200 and len(d["roc"]["fpr"]) == len(d["roc"]["tpr"])
