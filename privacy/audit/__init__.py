"""Empirical privacy audit: what a membership-inference attacker actually learns.

An accountant's ε is a promise about the training algorithm; this package measures the
trained model. It runs the loss-threshold and likelihood-ratio (LiRA) attacks where the
data is, and turns their error rates into a confidence-bounded ε lower bound that can be
set beside the accountant's ε (docs/privacy_audit.md).
"""

from privacy.audit.bounds import EpsilonBound, epsilon_from_rates, epsilon_lower_bound
from privacy.audit.errors import AuditError
from privacy.audit.lira import ShadowTrainer, dp_trainer, standard_trainer
from privacy.audit.report import AttackResult, AuditReport, plot_audit
from privacy.audit.runner import ATTACKS, run_audit, score_attack

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AuditError",
    "AuditReport",
    "EpsilonBound",
    "ShadowTrainer",
    "dp_trainer",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "plot_audit",
    "run_audit",
    "score_attack",
    "standard_trainer",
]
