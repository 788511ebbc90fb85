"""What the audit found, as numbers a data-protection officer can file and as plots."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from privacy.audit.errors import AuditError


@dataclass
class AttackResult:
    """One attack against one model: separation, low-FPR power, and the ε it proves."""

    attack: str
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_1pct_fpr: float
    tpr_ci: tuple[float, float]
    tpr_at_01pct_fpr: float | None
    epsilon_lower_bound: float
    epsilon_ci: tuple[float, float]
    epsilon_estimate: float
    threshold: float
    roc: tuple[np.ndarray, np.ndarray]
    n_members: int
    n_nonmembers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "auc": self.auc,
            "auc_ci": list(self.auc_ci),
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "tpr_ci": list(self.tpr_ci),
            "tpr_at_01pct_fpr": self.tpr_at_01pct_fpr,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "epsilon_ci": [_finite(v) for v in self.epsilon_ci],
            "epsilon_estimate": _finite(self.epsilon_estimate),
            "threshold": self.threshold,
            "roc": {"fpr": self.roc[0].tolist(), "tpr": self.roc[1].tolist()},
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


def _finite(value: float) -> float | None:
    """JSON has no infinity: an unbounded upper limit is written as null."""
    return value if math.isfinite(value) else None


@dataclass
class AuditReport:
    """Every attack run against one model, with the settings that make it reproducible."""

    task: str
    attacks: dict[str, AttackResult]
    delta: float
    confidence: float
    lira_mode: str
    shadows: int
    seed: int
    target: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, attack: str) -> AttackResult:
        return self.attacks[attack]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "delta": self.delta,
            "confidence": self.confidence,
            "lira_mode": self.lira_mode,
            "shadows": self.shadows,
            "seed": self.seed,
            "target": self.target,
            "attacks": {k: v.to_dict() for k, v in self.attacks.items()},
        }

    def write_json(self, path: Path) -> Path:
        """Atomic: a reader never sees half a report, and a failure leaves the old one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh, indent=2, allow_nan=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def plot_audit(
    reports: dict[str, AuditReport],
    accountant_epsilon: dict[str, float] | None,
    out_dir: Path,
) -> list[Path]:
    """Attack ROC curves (log-log, where low-FPR power shows) and empirical vs promised ε.

    `reports` and `accountant_epsilon` are keyed by setting ("no DP", "ε=8", ...); a
    setting without an accountant ε (no DP) is drawn without the promised bar.
    """
    if not reports:
        raise AuditError("no audit reports to plot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AuditError("plots need matplotlib: pip install matplotlib") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    promised = accountant_epsilon or {}
    attacks = sorted({a for r in reports.values() for a in r.attacks})

    fig, axes = plt.subplots(1, len(attacks), figsize=(5 * len(attacks), 4.5), squeeze=False)
    for ax, attack in zip(axes[0], attacks, strict=True):
        floor = 1.0
        for setting, report in reports.items():
            if attack not in report.attacks:
                continue
            res = report.attacks[attack]
            floor = min(floor, 1.0 / max(res.n_nonmembers, 1))
            fpr, tpr = res.roc
            ax.plot(
                np.maximum(fpr, floor / 2),
                np.maximum(tpr, floor / 2),
                label=f"{setting} (AUC {res.auc:.3f})",
            )
        ax.plot([floor / 2, 1], [floor / 2, 1], "k--", lw=0.8, label="chance")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="false-positive rate",
            ylabel="true-positive rate",
            title=f"{attack} attack",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    roc_path = out_dir / "audit_roc.png"
    fig.savefig(roc_path, dpi=120)
    plt.close(fig)

    settings = list(reports)
    width = 0.8 / (len(attacks) + 1)
    x = np.arange(len(settings))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(settings)), 4.5))
    values = [promised.get(s, math.nan) for s in settings]
    ax.bar(x, values, width, label="accountant ε (promised)", color="lightgrey")
    for xi, v in zip(x, values, strict=True):
        if math.isnan(v):
            ax.annotate("ε = ∞", (xi, 0), ha="center", va="bottom", fontsize=8, color="grey")
    for i, attack in enumerate(attacks):
        lows, highs = [], []
        for s in settings:
            res = reports[s].attacks.get(attack)
            lows.append(res.epsilon_lower_bound if res else math.nan)
            highs.append(res.epsilon_estimate if res else math.nan)
        ax.bar(x + (i + 1) * width, lows, width, label=f"{attack}: empirical ε lower bound")
        finite = [h if math.isfinite(h) else math.nan for h in highs]
        ax.scatter(x + (i + 1) * width, finite, marker="_", s=200, color="black")
    ax.set_xticks(x + width * len(attacks) / 2, settings)
    ax.set_ylabel("ε")
    conf = next(iter(reports.values())).confidence
    ax.set_title(f"empirical ε ({conf:.0%} lower bound; ticks: point estimate) vs accountant")
    ax.legend(fontsize=8)
    fig.tight_layout()
    eps_path = out_dir / "audit_epsilon.png"
    fig.savefig(eps_path, dpi=120)
    plt.close(fig)
    return [roc_path, eps_path]
