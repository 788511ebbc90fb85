"""The differential-privacy lower bound a membership attack implies.

An (ε, δ)-DP training algorithm limits every membership test: for any decision rule,
FPR + e^ε·FNR ≥ 1 − δ and FNR + e^ε·FPR ≥ 1 − δ (Kairouz et al. 2015). So an attack with
error rates FPR, FNR proves ε ≥ log((1 − δ − FNR)/FPR) and ε ≥ log((1 − δ − FPR)/FNR).
Observed rates are estimates, so the bound uses Clopper–Pearson upper limits on both rates
(Jagielski et al. 2020, Nasr et al. 2021) and the threshold is chosen on one half of the
scores and evaluated on the other, so picking the luckiest threshold does not inflate it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from privacy.audit.errors import AuditError


def clopper_pearson_upper(
    errors: np.ndarray | int, trials: int, alpha: float
) -> np.ndarray | float:
    """One-sided (1 − alpha) upper confidence limit of a binomial proportion."""
    k = np.asarray(errors, dtype=float)
    upper = np.where(k >= trials, 1.0, beta.ppf(1.0 - alpha, k + 1.0, np.maximum(trials - k, 1.0)))
    return float(upper) if upper.ndim == 0 else upper


def clopper_pearson_lower(
    errors: np.ndarray | int, trials: int, alpha: float
) -> np.ndarray | float:
    """One-sided (1 − alpha) lower confidence limit of a binomial proportion."""
    k = np.asarray(errors, dtype=float)
    lower = np.where(k <= 0, 0.0, beta.ppf(alpha, np.maximum(k, 1.0), trials - k + 1.0))
    return float(lower) if lower.ndim == 0 else lower


def epsilon_from_rates(
    fpr: np.ndarray | float, fnr: np.ndarray | float, delta: float
) -> np.ndarray | float:
    """The largest ε the two DP inequalities force for these error rates (0 if none)."""
    fpr_a, fnr_a = np.asarray(fpr, dtype=float), np.asarray(fnr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.clip(1.0 - delta - fnr_a, 0.0, None)) - np.log(fpr_a)
        b = np.log(np.clip(1.0 - delta - fpr_a, 0.0, None)) - np.log(fnr_a)
    eps = np.nan_to_num(np.maximum(a, b), nan=0.0, posinf=np.inf, neginf=0.0)
    eps = np.maximum(eps, 0.0)
    return float(eps) if eps.ndim == 0 else eps


def _errors_at(
    member: np.ndarray, nonmember: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """False positives and false negatives of the rule "member iff score ≥ t", per t."""
    m, n = np.sort(member), np.sort(nonmember)
    false_pos = len(n) - np.searchsorted(n, thresholds, side="left")
    false_neg = np.searchsorted(m, thresholds, side="left")
    return false_pos, false_neg


@dataclass(frozen=True)
class EpsilonBound:
    """ε implied at one threshold: lower/upper confidence limits and the plug-in estimate."""

    lower: float
    upper: float
    estimate: float
    threshold: float
    fpr: float
    fnr: float
    n_members: int
    n_nonmembers: int


def _conservative(
    fp: np.ndarray, fn: np.ndarray, n_neg: int, n_pos: int, delta: float, alpha: float
) -> np.ndarray:
    fpr_hi = clopper_pearson_upper(fp, n_neg, alpha / 2)
    fnr_hi = clopper_pearson_upper(fn, n_pos, alpha / 2)
    return np.asarray(epsilon_from_rates(fpr_hi, fnr_hi, delta))


def epsilon_lower_bound(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    delta: float,
    alpha: float = 0.05,
    seed: int = 0,
) -> EpsilonBound:
    """ε lower bound at confidence 1 − alpha, threshold chosen on a held-apart half.

    Higher scores mean "member". Each score set is split at random into a selection half
    and an evaluation half; the threshold maximising the conservative bound on the
    selection half is evaluated once on the evaluation half. Both error-rate limits are
    taken at alpha/2 (Bonferroni), so the pair holds jointly with probability 1 − alpha.
    """
    member = np.asarray(member_scores, dtype=float)
    nonmember = np.asarray(nonmember_scores, dtype=float)
    if len(member) < 4 or len(nonmember) < 4:
        raise AuditError(
            f"{len(member)} members and {len(nonmember)} non-members: the ε bound needs at "
            "least 4 of each; audit a larger data set"
        )
    if not (0.0 <= delta < 1.0) or not (0.0 < alpha < 1.0):
        raise AuditError(f"delta {delta} and alpha {alpha} must lie in [0, 1) and (0, 1)")
    if not (np.isfinite(member).all() and np.isfinite(nonmember).all()):
        raise AuditError("attack scores hold NaN or infinity; the model's outputs are not finite")
    rng = np.random.default_rng(seed)
    m_perm, n_perm = rng.permutation(len(member)), rng.permutation(len(nonmember))
    m_sel, m_eval = member[m_perm[: len(member) // 2]], member[m_perm[len(member) // 2 :]]
    n_sel, n_eval = (
        nonmember[n_perm[: len(nonmember) // 2]],
        nonmember[n_perm[len(nonmember) // 2 :]],
    )

    # Thresholds midway between neighbouring scores generalise to unseen scores better
    # than the scores themselves.
    seen = np.unique(np.concatenate([m_sel, n_sel]))
    candidates = np.concatenate([[seen[0] - 1.0], (seen[:-1] + seen[1:]) / 2, [seen[-1] + 1.0]])
    fp, fn = _errors_at(m_sel, n_sel, candidates)
    sel_eps = _conservative(fp, fn, len(n_sel), len(m_sel), delta, alpha)
    # Among equally good thresholds take the middle one: less sensitive to the split.
    best = np.flatnonzero(sel_eps == sel_eps.max())
    threshold = float(candidates[best[len(best) // 2]])

    fp_e, fn_e = _errors_at(m_eval, n_eval, np.array([threshold]))
    fp_k, fn_k = int(fp_e[0]), int(fn_e[0])
    n_neg, n_pos = len(n_eval), len(m_eval)
    lower = float(_conservative(np.array([fp_k]), np.array([fn_k]), n_neg, n_pos, delta, alpha)[0])
    fpr_lo = clopper_pearson_lower(fp_k, n_neg, alpha / 2)
    fnr_lo = clopper_pearson_lower(fn_k, n_pos, alpha / 2)
    upper = float(epsilon_from_rates(fpr_lo, fnr_lo, delta))
    fpr, fnr = fp_k / n_neg, fn_k / n_pos
    return EpsilonBound(
        lower=lower,
        upper=upper,
        estimate=float(epsilon_from_rates(fpr, fnr, delta)),
        threshold=threshold,
        fpr=fpr,
        fnr=fnr,
        n_members=n_pos,
        n_nonmembers=n_neg,
    )
