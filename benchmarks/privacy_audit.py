"""Privacy–utility table: what membership attacks learn without DP and at ε = 8, 3, 1.

The same task, data split, model and recipe, trained four times side by side: once without
differential privacy (the baseline) and with DP-SGD at each target ε. Each model is
attacked with the loss-threshold attack and LiRA (shadow models trained with the same
recipe, DP included), on a 50/50 member/non-member split of the task's bundled data.

    .venv/bin/python benchmarks/privacy_audit.py            # credit-default, 8 shadows
    .venv/bin/python benchmarks/privacy_audit.py --quick    # fewer epochs and shadows
    .venv/bin/python benchmarks/privacy_audit.py --task breast-cancer --out results/audit
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from fl_client.data import prepare
from fl_client.tasks import get_task
from fl_client.tasks.base import Task
from privacy.audit import (
    AuditReport,
    ShadowTrainer,
    dp_trainer,
    plot_audit,
    run_audit,
    standard_trainer,
)
from privacy.dp import DPConfig

DELTA = 1e-5


def private_trainer(
    task: Task, *, epsilon: float, epochs: int, max_grad_norm: float, spent: list[float]
) -> ShadowTrainer:
    """The institutions' DP-SGD (privacy.dp), calibrated so all `epochs` spend `epsilon`."""
    dp = DPConfig(target_epsilon=epsilon, delta=DELTA, max_grad_norm=max_grad_norm)
    return dp_trainer(task, dp, epochs=epochs, spent=spent)


def _cell(value: float, ci: tuple[float, float]) -> str:
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--task", default="credit-default", choices=["credit-default", "breast-cancer"]
    )
    parser.add_argument("--quick", action="store_true", help="fewer epochs and shadow models")
    parser.add_argument(
        "--epochs",
        type=int,
        help="epochs of the overfitted non-private model (default 60, quick 25)",
    )
    parser.add_argument(
        "--dp-epochs", type=int, default=10, help="epochs of the DP recipe (and its no-DP twin)"
    )
    parser.add_argument("--shadows", type=int, help="LiRA shadow models (default 8, quick 4)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[8.0, 3.0, 1.0])
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write benchmark.json and the audit plots here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="opacus")
    warnings.filterwarnings("ignore", message=".*secure_mode.*")
    warnings.filterwarnings("ignore", message=".*Full backward hook.*")

    task = get_task(args.task)
    epochs = args.epochs or (25 if args.quick else 60)
    dp_epochs = args.dp_epochs
    shadows = args.shadows or (4 if args.quick else 8)
    data = prepare(task.reference_data(), task.schema, 0.5, args.seed)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"{task.name}: {data.num_train} members / {data.num_test} non-members, "
        f"{shadows} shadows, δ = {DELTA:g}; no DP trained {epochs} epochs (overfitted), "
        f"DP recipe {dp_epochs} epochs"
    )

    # (name, target ε or None, epochs): the long non-private run shows what leakage looks
    # like; the short one is the DP recipe without noise, the fair utility baseline.
    settings: list[tuple[str, float | None, int]] = [
        (f"no DP, {epochs} epochs", None, epochs),
        (f"no DP, {dp_epochs} epochs", None, dp_epochs),
        *((f"ε = {e:g}", e, dp_epochs) for e in args.epsilons),
    ]
    reports: dict[str, AuditReport] = {}
    accountant: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for name, epsilon, n_epochs in settings:
        started = time.perf_counter()
        spent: list[float] = []
        trainer = (
            standard_trainer(task, epochs=n_epochs)
            if epsilon is None
            else private_trainer(
                task,
                epsilon=epsilon,
                epochs=n_epochs,
                max_grad_norm=args.max_grad_norm,
                spent=spent,
            )
        )
        target = trainer(data.x_train, data.y_train, args.seed + 1)
        if spent:
            accountant[name] = spent[0]
        reports[name] = run_audit(
            target,
            task,
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            shadows=shadows,
            epochs=n_epochs,
            seed=args.seed,
            delta=DELTA,
            trainer=trainer,
        )
        seconds[name] = time.perf_counter() - started
        console.print(f"  {name}: done in {seconds[name]:.0f} s")

    base = reports[settings[0][0]]
    table = Table(
        title=f"privacy–utility: {task.name} ({data.num_train} members / {data.num_test} "
        f"non-members, {shadows} shadows, 95% CIs, δ = {DELTA:g})"
    )
    for col in (
        "training",
        "accountant ε",
        "test accuracy / AUC",
        "loss AUC",
        "loss TPR@1%FPR",
        "LiRA AUC",
        "LiRA TPR@1%FPR",
        "empirical ε ≥ (loss / LiRA)",
        "LiRA advantage vs row 1",
    ):
        table.add_column(col, justify="left" if col == "training" else "right")
    for name, rep in reports.items():
        loss, lira = rep["loss"], rep["lira"]
        base_adv = base["lira"].auc - 0.5
        ratio = (lira.auc - 0.5) / base_adv if base_adv > 0 else math.nan
        table.add_row(
            name,
            f"{accountant[name]:.2f}" if name in accountant else "∞",
            f"{rep.target['nonmember_accuracy']:.3f} / {rep.target['nonmember_auc']:.3f}",
            _cell(loss.auc, loss.auc_ci),
            _cell(loss.tpr_at_1pct_fpr, loss.tpr_ci),
            _cell(lira.auc, lira.auc_ci),
            _cell(lira.tpr_at_1pct_fpr, lira.tpr_ci),
            f"{loss.epsilon_lower_bound:.2f} / {lira.epsilon_lower_bound:.2f}",
            f"{ratio:.2f}×",
        )
    console.print(table)
    console.print(
        "test accuracy / AUC: the model's own, on the non-member half. empirical ε: the 95% "
        "lower bound the attack proves. LiRA advantage: (AUC − 0.5) relative to row 1."
    )
    broken = [
        n
        for n, r in reports.items()
        if n in accountant
        and max(a.epsilon_lower_bound for a in r.attacks.values()) > accountant[n]
    ]
    if broken:
        console.print(f"[red]empirical ε exceeds the accountant's ε for {', '.join(broken)}[/]")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {
            "task": task.name,
            "epochs": epochs,
            "dp_epochs": dp_epochs,
            "shadows": shadows,
            "accountant_epsilon": accountant,
            "seconds": seconds,
            "reports": {n: r.to_dict() for n, r in reports.items()},
        }
        (args.out / "benchmark.json").write_text(json.dumps(summary, indent=2))
        for path in plot_audit(reports, accountant, args.out):
            console.print(f"plot: {path}")


if __name__ == "__main__":
    main()
