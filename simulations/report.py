"""What people look at after a run: metrics.json, plots and a summary table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_curve


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def plot_rounds(metrics: dict[str, Any], out: Path) -> Path:
    rounds = [r["round"] for r in metrics["rounds"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        ax.plot(
            rounds,
            [r["metrics"].get(key, np.nan) for r in metrics["rounds"]],
            "o-",
            label="federated (mean over institutions)",
            color="#2563eb",
        )
        if key in metrics.get("centralized", {}):
            ax.axhline(
                metrics["centralized"][key], color="#6b7280", ls="--", label="centralised baseline"
            )
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    cfg = metrics["config"]
    fig.suptitle(f"{cfg['task']} - {cfg['clients']} institutions, {cfg['partition']}")
    fig.tight_layout()
    path = out / "rounds.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_epsilon(metrics: dict[str, Any], out: Path) -> Path | None:
    """Privacy spent by each institution over the rounds it took part in."""
    spent: dict[str, list[tuple[int, float]]] = {}
    for r in metrics["rounds"]:
        for who, eps in r.get("epsilon", {}).items():
            spent.setdefault(who, []).append((r["round"], eps))
    if not spent:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for who, points in sorted(spent.items()):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, "o-", ms=3, label=who)
    target = metrics["config"].get("dp_epsilon")
    if target:
        ax.axhline(target, color="#dc2626", ls="--", lw=1, label=f"run target ε={target:g}")
    ax.set_xlabel("round")
    ax.set_ylabel("ε spent in this run")
    ax.set_title(f"privacy spent (δ={metrics['config'].get('dp_delta', 0):g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "epsilon.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for label, (y, score) in curves.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="#9ca3af", ls=":", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = out / "roc.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"{metrics['config']['task']}: federated vs centralised")
    table.add_column("round", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("loss", justify="right")
    table.add_column("institutions", justify="right")
    table.add_column("max ε", justify="right")
    table.add_column("left out")
    table.add_column("bytes up/down", justify="right")
    for r in metrics["rounds"]:
        m = r["metrics"]
        table.add_row(
            str(r["round"]),
            f"{m.get('accuracy', float('nan')):.3f}",
            f"{m.get('loss', float('nan')):.3f}",
            str(len(r["clients"])),
            f"{max(r['epsilon'].values()):.2f}" if r.get("epsilon") else "-",
            ", ".join(sorted(r.get("rejected", {}))) or "-",
            f"{r['bytes_up']:,} / {r['bytes_down']:,}",
        )
    fin, cen = metrics["final"], metrics["centralized"]
    for label, row in (("final", fin), ("central", cen)):
        extra = f"auc {row['auc']:.3f}" if "auc" in row else ""
        table.add_row(label, f"{row['accuracy']:.3f}", "", "", "", extra, "", style="bold")
    return table


def audit_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="membership-inference audit (95% intervals)")
    for col in ("institution", "attack", "AUC", "TPR@1%FPR", "empirical ε ≥", "accountant ε"):
        table.add_column(col, justify="left" if col in ("institution", "attack") else "right")
    for who, rep in metrics["audit"].items():
        promised = rep["accountant_epsilon"]
        for name, a in rep["attacks"].items():
            lo, hi = a["auc_ci"]
            table.add_row(
                who,
                name,
                f"{a['auc']:.3f} [{lo:.2f}, {hi:.2f}]",
                f"{a['tpr_at_1pct_fpr']:.3f}",
                f"{a['epsilon_lower_bound']:.2f}",
                f"{promised:.2f}" if promised is not None else "∞ (no DP)",
            )
    return table


def print_summary(metrics: dict[str, Any], console: Console | None = None) -> None:
    out = console or Console()
    out.print(summary_table(metrics))
    if "audit" in metrics:
        out.print(audit_table(metrics))
