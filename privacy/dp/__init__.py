"""Differential privacy for an institution's local training (Opacus DP-SGD)."""

from privacy.dp.accounting import Step, calibrate_noise, epsilon_of
from privacy.dp.config import DPConfig
from privacy.dp.engine import PrivateTraining, dp_ready, make_private, noise_seed, sampling
from privacy.dp.errors import BudgetExceeded, DPError

__all__ = [
    "BudgetExceeded",
    "DPConfig",
    "DPError",
    "PrivateTraining",
    "Step",
    "calibrate_noise",
    "dp_ready",
    "epsilon_of",
    "make_private",
    "noise_seed",
    "sampling",
]
