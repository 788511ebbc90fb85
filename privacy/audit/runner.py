"""Run every membership attack against one model, where the data is.

The institution audits on its own training split (members) and held-out split
(non-members); no record leaves it. Shadow models for LiRA are trained on the same records.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fl_client.tasks.base import Task
from privacy.audit import roc
from privacy.audit.attacks import logits, loss_scores
from privacy.audit.bounds import epsilon_lower_bound
from privacy.audit.errors import AuditError
from privacy.audit.lira import ShadowTrainer, offline_scores, online_scores, standard_trainer
from privacy.audit.report import AttackResult, AuditReport

ATTACKS = ("loss", "lira")


def score_attack(
    name: str,
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    bootstrap: int = 1000,
    seed: int = 0,
) -> AttackResult:
    """Turn raw attack scores (higher = member) into the audit's figures with intervals."""
    m = np.asarray(member_scores, dtype=float)
    n = np.asarray(nonmember_scores, dtype=float)
    bound = epsilon_lower_bound(m, n, delta=delta, alpha=1.0 - confidence, seed=seed)
    auc_ci, tpr_ci = roc.bootstrap_ci(
        m, n, target_fpr=0.01, resamples=bootstrap, confidence=confidence, seed=seed
    )
    return AttackResult(
        attack=name,
        auc=roc.auc(m, n),
        auc_ci=auc_ci,
        tpr_at_1pct_fpr=roc.tpr_at_fpr(m, n, 0.01),
        tpr_ci=tpr_ci,
        tpr_at_01pct_fpr=roc.tpr_at_fpr(m, n, 0.001) if roc.supports_fpr(len(n), 0.001) else None,
        epsilon_lower_bound=bound.lower,
        epsilon_ci=(bound.lower, bound.upper),
        epsilon_estimate=bound.estimate,
        threshold=bound.threshold,
        roc=roc.roc(m, n),
        n_members=len(m),
        n_nonmembers=len(n),
    )


def _check_inputs(
    task: Task, x_in: np.ndarray, y_in: np.ndarray, x_out: np.ndarray, y_out: np.ndarray
) -> None:
    if len(x_in) != len(y_in) or len(x_out) != len(y_out):
        raise AuditError("features and labels differ in length; pass matching arrays")
    if len(y_in) < 8 or len(y_out) < 8:
        raise AuditError(
            f"{len(y_in)} members and {len(y_out)} non-members: an audit needs at least 8 "
            "of each; lower --test-fraction or audit a larger data set"
        )
    classes = task.schema.num_classes
    for y in (y_in, y_out):
        if y.min() < 0 or y.max() >= classes:
            raise AuditError(f"labels must lie in 0..{classes - 1} for task {task.name!r}")


def run_audit(
    model: nn.Module,
    task: Task,
    member_x: np.ndarray,
    member_y: np.ndarray,
    nonmember_x: np.ndarray,
    nonmember_y: np.ndarray,
    *,
    shadow_data: tuple[np.ndarray, np.ndarray] | None = None,
    shadows: int = 8,
    epochs: int,
    seed: int = 0,
    delta: float = 1e-5,
    trainer: ShadowTrainer | None = None,
    attacks: tuple[str, ...] = ATTACKS,
    confidence: float = 0.95,
    bootstrap: int = 1000,
    device: torch.device | None = None,
) -> AuditReport:
    """Loss-threshold and LiRA attacks against `model`, with ε lower bounds.

    LiRA is online (shadows on halves of members ∪ non-members) unless `shadow_data`, a pool
    disjoint from both, is given (offline). `trainer` must train shadows the way `model`
    was trained (DP included); by default the task's non-private recipe for `epochs`.
    """
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown or not attacks:
        raise AuditError(f"unknown attack {unknown[0] if unknown else ''!r}; choose from {ATTACKS}")
    _check_inputs(task, member_x, member_y, nonmember_x, nonmember_y)
    try:
        z_in = logits(model, member_x, device)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise AuditError(
            f"the model cannot read these features ({first}); audit it with the task and "
            "feature mapping it was trained with"
        ) from None
    if z_in.shape[1] != task.schema.num_classes:
        raise AuditError(
            f"the model predicts {z_in.shape[1]} classes but task {task.name!r} has "
            f"{task.schema.num_classes}; pass the task the model was trained for"
        )
    target = {f"member_{k}": v for k, v in task.metrics(member_y, _softmax(z_in)).items()} | {
        f"nonmember_{k}": v
        for k, v in task.metrics(nonmember_y, _softmax(logits(model, nonmember_x, device))).items()
    }

    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "loss" in attacks:
        scores["loss"] = (
            loss_scores(model, member_x, member_y, device),
            loss_scores(model, nonmember_x, nonmember_y, device),
        )
    if "lira" in attacks:
        train = trainer or standard_trainer(task, epochs=epochs, device=device)
        pool_x = np.concatenate([member_x, nonmember_x])
        pool_y = np.concatenate([member_y, nonmember_y])
        if shadow_data is None:
            s = online_scores(
                model, pool_x, pool_y, train, shadows=shadows, seed=seed, device=device
            )
        else:
            sx, sy = shadow_data
            s = offline_scores(
                model, pool_x, pool_y, sx, sy, train, shadows=shadows, seed=seed, device=device
            )
        scores["lira"] = (s[: len(member_y)], s[len(member_y) :])

    results = {
        name: score_attack(
            name, m, n, delta=delta, confidence=confidence, bootstrap=bootstrap, seed=seed
        )
        for name, (m, n) in scores.items()
    }
    return AuditReport(
        task=task.name,
        attacks=results,
        delta=delta,
        confidence=confidence,
        lira_mode="offline" if shadow_data is not None else "online",
        shadows=shadows if "lira" in attacks else 0,
        seed=seed,
        target=target,
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(z), dim=1).numpy()
