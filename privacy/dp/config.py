"""What an institution's DP-SGD promises, and how it travels in the coordinator's messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacy.dp.errors import DPError

DEFAULT_EPSILON = 3.0
ACCOUNTANTS = ("prv", "rdp")
GRAD_SAMPLE_MODES = ("hooks", "ew", "ghost", "functorch")


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD for one federated run.

    Either `target_epsilon` (the noise is calibrated so that the whole run, every local step of
    every round, spends at most this) or a fixed `noise_multiplier`. Sampling is Poisson, as the
    accountants assume.
    """

    target_epsilon: float | None = None  # default 3.0 unless a noise multiplier is given
    noise_multiplier: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    grad_sample_mode: str = "hooks"

    def __post_init__(self) -> None:
        if self.target_epsilon is not None and self.noise_multiplier is not None:
            raise DPError("give a target epsilon or a noise multiplier, not both")
        if self.target_epsilon is None and self.noise_multiplier is None:
            object.__setattr__(self, "target_epsilon", DEFAULT_EPSILON)
        if self.target_epsilon is not None and not (
            math.isfinite(self.target_epsilon) and self.target_epsilon > 0
        ):
            raise DPError(f"target epsilon must be > 0, got {self.target_epsilon}; try 3")
        if self.noise_multiplier is not None and not (
            math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0
        ):
            raise DPError(f"noise multiplier must be >= 0, got {self.noise_multiplier}")
        if not 0 < self.delta < 1:
            raise DPError(f"delta must lie in (0, 1), got {self.delta}; try 1e-5")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise DPError(f"max grad norm must be > 0, got {self.max_grad_norm}; try 1.0")
        if self.accountant not in ACCOUNTANTS:
            raise DPError(f"unknown accountant {self.accountant!r}; use one of {ACCOUNTANTS}")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise DPError(
                f"unknown grad sample mode {self.grad_sample_mode!r}; use {GRAD_SAMPLE_MODES}"
            )

    def check_dataset(self, num_records: int) -> None:
        """delta must be well below 1/n, else releasing one record outright is 'private'."""
        if num_records < 1:
            raise DPError("no training records: DP-SGD needs data")
        if self.delta >= 1.0 / num_records:
            raise DPError(
                f"delta {self.delta:g} must be below 1/n = {1.0 / num_records:.3g} for "
                f"{num_records} records; use --dp-delta {_suggest_delta(num_records):g}"
            )

    def to_record(self) -> dict[str, Any]:
        """The keys a coordinator puts in the run's config record."""
        out: dict[str, Any] = {
            "dp": True,
            "dp-delta": self.delta,
            "max-grad-norm": self.max_grad_norm,
            "dp-accountant": self.accountant,
            "dp-grad-sample-mode": self.grad_sample_mode,
        }
        if self.target_epsilon is not None:
            out["dp-epsilon"] = self.target_epsilon
        else:
            out["dp-noise-multiplier"] = self.noise_multiplier
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DPConfig | None:
        """None when the run is not private (`dp` false or absent)."""
        if not bool(record.get("dp", False)):
            return None
        eps = record.get("dp-epsilon")
        noise = record.get("dp-noise-multiplier")
        return cls(
            target_epsilon=float(eps) if eps is not None else None,
            noise_multiplier=float(noise) if noise is not None else None,
            delta=float(record.get("dp-delta", 1e-5)),
            max_grad_norm=float(record.get("max-grad-norm", 1.0)),
            accountant=str(record.get("dp-accountant", "prv")),
            grad_sample_mode=str(record.get("dp-grad-sample-mode", "hooks")),
        )


def _suggest_delta(n: int) -> float:
    exponent = math.ceil(math.log10(n)) + 1
    return 10.0 ** (-exponent)
