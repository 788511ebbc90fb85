"""Run-level accounting on Opacus's own accountants.

An accountant's whole state is its history of (noise multiplier, sample rate, steps); the
institution's ledger stores exactly that, so epsilon can be recomputed after any restart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from functools import lru_cache

from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier

from privacy.dp.errors import DPError

Step = tuple[float, float, int]  # noise multiplier, sample rate, number of steps


def epsilon_of(history: Iterable[Step], delta: float, accountant: str = "prv") -> float:
    """Epsilon at `delta` spent by every step in `history`, composed by Opacus."""
    merged: dict[tuple[float, float], int] = {}
    for s, q, n in history:
        if n > 0:  # the same mechanism k times then m times is that mechanism k + m times
            key = (float(s), float(q))
            merged[key] = merged.get(key, 0) + int(n)
    steps = [(s, q, n) for (s, q), n in merged.items()]
    if not steps:
        return 0.0
    if any(s == 0 for s, _, _ in steps):
        return math.inf
    acc = create_accountant(accountant)
    acc.history = steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": a looser bound
        return float(acc.get_epsilon(delta=delta))


@lru_cache(maxsize=64)
def calibrate_noise(
    target_epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str
) -> float:
    """The smallest noise multiplier for which `total_steps` steps spend `target_epsilon`."""
    if not 0 < sample_rate <= 1:
        raise DPError(f"sample rate must lie in (0, 1], got {sample_rate}; lower the batch size")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(
                get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=total_steps,
                    accountant=accountant,
                    epsilon_tolerance=0.005,
                )
            )
    except ValueError as exc:
        raise DPError(
            f"cannot reach epsilon {target_epsilon} with delta {delta:g} over {total_steps} "
            f"steps: {exc}; raise --dp-epsilon or use fewer rounds"
        ) from None
