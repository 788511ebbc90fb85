"""How well attack scores separate members from non-members, with bootstrap intervals.

ROC AUC summarises the average case; the true-positive rate at a low false-positive rate
is what matters for privacy (Carlini et al. 2022): an attack that confidently identifies a
few records is a breach even when its AUC is near 0.5.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import roc_auc_score, roc_curve


def _labelled(member: np.ndarray, nonmember: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    return labels, np.concatenate([member, nonmember])


def auc(member: np.ndarray, nonmember: np.ndarray) -> float:
    return float(roc_auc_score(*_labelled(member, nonmember)))


def roc(member: np.ndarray, nonmember: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates along the threshold sweep."""
    fpr, tpr, _ = roc_curve(*_labelled(member, nonmember))
    return fpr, tpr


def tpr_at_fpr(member: np.ndarray, nonmember: np.ndarray, target_fpr: float) -> float:
    """Best true-positive rate among thresholds whose false-positive rate is ≤ the target."""
    fpr, tpr = roc(member, nonmember)
    return float(tpr[fpr <= target_fpr].max())


def supports_fpr(n_nonmembers: int, target_fpr: float) -> bool:
    """A false-positive rate is measurable only if one false positive is at most that rate."""
    return n_nonmembers * target_fpr >= 1.0


def bootstrap_ci(
    member: np.ndarray,
    nonmember: np.ndarray,
    *,
    target_fpr: float,
    resamples: int,
    confidence: float,
    seed: int,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals for AUC and TPR at `target_fpr`, resampling each group apart."""

    def statistic(m: np.ndarray, n: np.ndarray) -> np.ndarray:
        return np.array([auc(m, n), tpr_at_fpr(m, n, target_fpr)])

    with warnings.catch_warnings():
        # A statistic that never varies (a perfect attack) is a valid, degenerate interval.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*degenerate.*")
        result = bootstrap(
            (np.asarray(member, float), np.asarray(nonmember, float)),
            statistic,
            n_resamples=resamples,
            vectorized=False,
            paired=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = result.confidence_interval
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))
