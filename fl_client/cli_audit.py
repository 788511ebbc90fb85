"""`fl-client audit`: measure what a membership-inference attacker learns from a model.

Runs next to the institution's data: the records the model was trained on are the
members, the held-out split the non-members, and nothing leaves the machine.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import torch
import typer
from rich.console import Console
from rich.table import Table
from torch import nn

from fl_client.data import DataError, FeatureMapping, FeatureStats, load_table, prepare
from fl_client.tasks import UnknownTaskError, get_task
from fl_client.tasks.base import Task
from privacy.audit import ATTACKS, AuditError, AuditReport, plot_audit, run_audit
from privacy.audit.lira import standard_trainer

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def load_model(path: Path, task: Task) -> nn.Module:
    """The task's model with weights from a `torch.save(model.state_dict())` file."""
    if not path.is_file():
        raise AuditError(f"{path}: no such model file; point --model at the run's model.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError):
        raise AuditError(
            f"{path}: not a PyTorch state dict; save it with torch.save(model.state_dict(), path)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AuditError(
            f"{path}: holds no state dict of tensors; save it with "
            "torch.save(model.state_dict(), path)"
        )
    model = task.build_model()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or wrong:
        key = (missing or extra or wrong)[0]
        raise AuditError(
            f"{path}: does not fit task {task.name!r} (parameter {key!r} "
            f"{'missing' if missing else 'unexpected' if extra else 'has another shape'}); "
            "pass the --task the model was trained for"
        )
    model.load_state_dict(state)
    return model


def _read_json(path: Path, option: str, parse: Callable[[str], T]) -> T:
    if not path.is_file():
        raise AuditError(f"{option} {path}: no such file")
    try:
        return parse(path.read_text())
    except (ValueError, TypeError, KeyError):
        raise AuditError(
            f"{option} {path}: not in the expected JSON form; export it again from the run"
        ) from None


def _interval(low: float, high: float) -> str:
    hi = f"{high:.2f}" if math.isfinite(high) else "∞"
    return f"[{low:.2f}, {hi}]"


def print_report(report: AuditReport, accountant_epsilon: float | None = None) -> None:
    conf = f"{report.confidence:.0%}"
    table = Table(
        title=f"membership-inference audit: {report.task} (δ = {report.delta:g}, {conf} intervals)"
    )
    for col in (
        "attack",
        f"AUC [{conf} CI]",
        "TPR @ 1% FPR [CI]",
        "TPR @ 0.1% FPR",
        "ε lower bound [CI]",
        "members / non-members",
    ):
        table.add_column(col, justify="left" if col == "attack" else "right")
    for res in report.attacks.values():
        table.add_row(
            res.attack if res.attack == "loss" else f"lira ({report.lira_mode}, {report.shadows})",
            f"{res.auc:.3f} [{res.auc_ci[0]:.3f}, {res.auc_ci[1]:.3f}]",
            f"{res.tpr_at_1pct_fpr:.3f} [{res.tpr_ci[0]:.3f}, {res.tpr_ci[1]:.3f}]",
            "n/a" if res.tpr_at_01pct_fpr is None else f"{res.tpr_at_01pct_fpr:.3f}",
            f"{res.epsilon_lower_bound:.2f} {_interval(*res.epsilon_ci)}",
            f"{res.n_members} / {res.n_nonmembers}",
        )
    console.print(table)
    target = report.target
    if "member_accuracy" in target and "nonmember_accuracy" in target:
        console.print(
            f"model accuracy: {target['member_accuracy']:.3f} on members (training split), "
            f"{target['nonmember_accuracy']:.3f} on non-members (held-out split)"
        )
    if accountant_epsilon is not None:
        worst = max(r.epsilon_lower_bound for r in report.attacks.values())
        if worst > accountant_epsilon:
            console.print(
                f"[red]the attacks prove ε ≥ {worst:.2f} > the accountant's ε = "
                f"{accountant_epsilon:g}: the DP training or its accounting is broken[/]"
            )
        else:
            console.print(
                f"empirical ε lower bound {worst:.2f} ≤ accountant's ε {accountant_epsilon:g}"
            )


def audit(
    model: Annotated[Path, typer.Option(help="the trained model (torch state dict, model.pt)")],
    data: Annotated[Path, typer.Option(help="the institution's CSV or Parquet file")],
    task: Annotated[str, typer.Option(help="task the model was trained for")],
    mapping: Annotated[
        Path | None, typer.Option(help="feature mapping JSON the run used (knowledge graph)")
    ] = None,
    out: Annotated[Path, typer.Option(help="directory for audit.json and the plots")] = Path(
        "audit"
    ),
    seed: Annotated[int, typer.Option(help="the run's seed: reproduces its train/test split")] = 42,
    test_fraction: Annotated[
        float, typer.Option(help="the run's held-out fraction: reproduces its split")
    ] = 0.2,
    feature_stats: Annotated[
        Path | None,
        typer.Option(
            help="federation-wide feature statistics JSON, if the run standardised on them"
        ),
    ] = None,
    shadows: Annotated[int, typer.Option(help="LiRA shadow models (at least 4)")] = 8,
    epochs: Annotated[
        int,
        typer.Option(
            help="epochs per shadow model: match the audited training (rounds x local epochs)"
        ),
    ] = 20,
    batch_size: Annotated[
        int | None, typer.Option(help="shadow batch size (default: the task's)")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="shadow learning rate (default: the task's)")
    ] = None,
    delta: Annotated[float, typer.Option(help="δ of the ε lower bound")] = 1e-5,
    accountant_epsilon: Annotated[
        float | None, typer.Option(help="the ε the DP accountant reported, to compare against")
    ] = None,
    attack: Annotated[
        list[str] | None, typer.Option(help="attack to run (repeatable): loss, lira")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for AUC/TPR CIs")] = 1000,
) -> None:
    """Run membership-inference attacks on the local data and report the ε they prove."""
    try:
        t = get_task(task)
        if not 0.0 < test_fraction < 1.0:
            raise AuditError(f"--test-fraction {test_fraction} must lie strictly between 0 and 1")
        if bootstrap < 100:
            raise AuditError(f"--bootstrap {bootstrap} is too few; use at least 100")
        net = load_model(model, t)
        fm = _read_json(mapping, "--mapping", FeatureMapping.from_json) if mapping else None
        stats = (
            _read_json(feature_stats, "--feature-stats", FeatureStats.from_json)
            if feature_stats
            else None
        )
        local = prepare(load_table(data, t.schema, fm), t.schema, test_fraction, seed, stats)
        trainer = standard_trainer(
            t, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
        )
        with console.status("training shadow models and running the attacks"):
            report = run_audit(
                net,
                t,
                local.x_train,
                local.y_train,
                local.x_test,
                local.y_test,
                shadows=shadows,
                epochs=epochs,
                seed=seed,
                delta=delta,
                trainer=trainer,
                attacks=tuple(attack) if attack else ATTACKS,
                bootstrap=bootstrap,
            )
    except (AuditError, DataError, UnknownTaskError, OSError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    print_report(report, accountant_epsilon)
    json_path = report.write_json(out / "audit.json")
    console.print(f"report: {json_path}")
    setting = "audited model"
    try:
        paths = plot_audit(
            {setting: report},
            {setting: accountant_epsilon} if accountant_epsilon is not None else None,
            out,
        )
    except AuditError as exc:
        err_console.print(f"[yellow]plots skipped:[/] {exc}", soft_wrap=True)
        return
    console.print("plots: " + ", ".join(str(p) for p in paths))
