"""`fl-sim run --audit`: every simulated institution audits the final model on its own data.

As at a real institution, the audit sees only that institution's records: its training split
are the members, its held-out split the non-members. Shadow models follow the run's local
recipe (rounds x local epochs, DP-SGD at the run's target when the run was private); they
approximate the federated training, which no single institution can replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from fl_client.data import Encoder, FeatureStats
from fl_client.tasks.base import Task
from privacy.audit import AuditReport, dp_trainer, plot_audit, run_audit, standard_trainer
from privacy.dp import DPConfig

SHADOWS = 4
BOOTSTRAP = 300


def audit_institutions(
    model: nn.Module,
    task: Task,
    names: Sequence[str],
    splits: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    stats: FeatureStats | None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    dp: DPConfig | None,
    accountant_epsilon: dict[str, float],
    seed: int,
    out: Path,
) -> dict[str, Any]:
    """Audit reports per institution for metrics.json, and the audit plots in `out`."""
    reports: dict[str, AuditReport] = {}
    for name, (train, test) in zip(names, splits, strict=True):
        enc = Encoder(task.schema).fit_stats(stats) if stats else Encoder(task.schema).fit(train)
        if dp is None:
            trainer = standard_trainer(
                task, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
            )
        else:
            trainer = dp_trainer(
                task, dp, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
            )
        reports[name] = run_audit(
            model,
            task,
            enc.features(train),
            enc.labels(train),
            enc.features(test),
            enc.labels(test),
            shadows=SHADOWS,
            epochs=epochs,
            seed=seed,
            delta=dp.delta if dp else 1e-5,
            trainer=trainer,
            bootstrap=BOOTSTRAP,
        )
    plot_audit(reports, accountant_epsilon or None, out)
    return {
        name: {
            "accountant_epsilon": accountant_epsilon.get(name),
            "delta": report.delta,
            "shadows": report.shadows,
            "attacks": {
                a: {k: v for k, v in r.to_dict().items() if k not in ("roc", "threshold")}
                for a, r in report.attacks.items()
            },
        }
        for name, report in reports.items()
    }
