"""The likelihood-ratio attack (LiRA, Carlini et al. 2022) with shadow models.

Shadow models are trained the way the target was, on the institution's own records, so the
attack learns, record by record, how the model's confidence on that record looks when the
record was in training and when it was not. The target's confidence is then scored by
which of the two fitted Gaussians explains it better.

- online: the pool (members and non-members of the target) is split so that every record
  is in exactly half the shadows; score = log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out).
- offline: shadows train on a separate pool that holds none of the audited records, so
  every audited record is out of every shadow; score = (φ − μ_out)/σ_out, a one-sided test.

With few shadows the per-record variance estimate is noisy, so one global variance is
used per side (the paper's recommendation below 64 shadows).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

from fl_client.tasks.base import Task
from fl_client.training import make_loader, make_optimizer, seed_everything, train_epochs
from privacy.audit.attacks import logits, scaled_confidence
from privacy.audit.errors import AuditError
from privacy.dp import DPConfig, calibrate_noise, dp_ready, make_private, sampling

ShadowTrainer = Callable[[np.ndarray, np.ndarray, int], nn.Module]
"""Train a fresh model on (x, y) with a seed, exactly as the audited model was trained."""


def standard_trainer(
    task: Task,
    *,
    epochs: int,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    model_factory: Callable[[], nn.Module] | None = None,
    device: torch.device | None = None,
) -> ShadowTrainer:
    """Non-private training with the project's own loop and the task's defaults."""
    if epochs < 1:
        raise AuditError(f"shadow epochs must be at least 1, got {epochs}")
    build = model_factory or task.build_model
    dev = device or torch.device("cpu")

    def train(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
        seed_everything(seed)
        model = build()
        loader = make_loader(x, y, batch_size or task.batch_size, seed)
        optimizer = make_optimizer(model, learning_rate or task.learning_rate)
        train_epochs(model, loader, optimizer, task.loss(), epochs, dev)
        return model

    return train


def dp_trainer(
    task: Task,
    dp: DPConfig,
    *,
    epochs: int,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    model_factory: Callable[[], nn.Module] | None = None,
    device: torch.device | None = None,
    spent: list[float] | None = None,
) -> ShadowTrainer:
    """DP-SGD the way institutions train (privacy.dp), noise calibrated for all `epochs`.

    Each model's ε, as Opacus's accountant reports it, is appended to `spent`.
    """
    if epochs < 1:
        raise AuditError(f"shadow epochs must be at least 1, got {epochs}")
    build = model_factory or task.build_model
    dev = device or torch.device("cpu")
    bs = batch_size or task.batch_size

    def train(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
        seed_everything(seed)
        model = dp_ready(build()).to(dev)
        q, per_epoch = sampling(len(y), bs)
        sigma = dp.noise_multiplier
        if sigma is None:
            assert dp.target_epsilon is not None
            sigma = calibrate_noise(
                dp.target_epsilon, dp.delta, q, epochs * per_epoch, dp.accountant
            )
        private = make_private(
            model,
            make_optimizer(model, learning_rate or task.learning_rate),
            make_loader(x, y, bs, seed),
            task.loss(),
            dp,
            sigma,
            noise_seed=seed,
        )
        train_epochs(
            private.module, private.loader, private.optimizer, private.criterion, epochs, dev
        )
        if spent is not None:
            spent.append(float(private.engine.accountant.get_epsilon(dp.delta)))
        return model

    return train


def balanced_inclusion(n: int, shadows: int, seed: int) -> np.ndarray:
    """A (shadows, n) mask: every record is in exactly ⌊shadows/2⌋ shadow training sets."""
    rng = np.random.default_rng(seed)
    order = rng.random((shadows, n)).argsort(axis=0)
    return order < shadows // 2


def _confidences(
    trainer: ShadowTrainer,
    train_x: np.ndarray,
    train_y: np.ndarray,
    masks: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    seed: int,
    device: torch.device | None,
) -> np.ndarray:
    out = np.empty((len(masks), len(eval_y)))
    for k, mask in enumerate(masks):
        shadow = trainer(train_x[mask], train_y[mask], seed * 1_000 + k + 1)
        out[k] = scaled_confidence(logits(shadow, eval_x, device), eval_y)
    return out


def _check_shadows(shadows: int, least: int) -> None:
    if shadows < least:
        raise AuditError(
            f"LiRA needs at least {least} shadow models here, got {shadows}; use --shadows 8"
        )


def online_scores(
    target: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    trainer: ShadowTrainer,
    *,
    shadows: int,
    seed: int,
    device: torch.device | None = None,
) -> np.ndarray:
    """LiRA scores for every record of the pool (x, y), shadows trained on halves of it."""
    _check_shadows(shadows, 4)  # two in and two out per record to fit a variance
    masks = balanced_inclusion(len(y), shadows, seed)
    conf = _confidences(trainer, x, y, masks, x, y, seed, device)
    observed = scaled_confidence(logits(target, x, device), y)
    n_in = masks.sum(axis=0)
    mu_in = np.where(masks, conf, 0.0).sum(axis=0) / n_in
    mu_out = np.where(~masks, conf, 0.0).sum(axis=0) / (len(masks) - n_in)
    sd_in = _pooled_sd(conf - mu_in, masks)
    sd_out = _pooled_sd(conf - mu_out, ~masks)
    return norm.logpdf(observed, mu_in, sd_in) - norm.logpdf(observed, mu_out, sd_out)


def offline_scores(
    target: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    shadow_x: np.ndarray,
    shadow_y: np.ndarray,
    trainer: ShadowTrainer,
    *,
    shadows: int,
    seed: int,
    device: torch.device | None = None,
) -> np.ndarray:
    """LiRA scores for (x, y) from shadows that never saw any of those records."""
    _check_shadows(shadows, 2)
    if len(shadow_y) < 4:
        raise AuditError(f"the shadow pool holds {len(shadow_y)} records; give it at least 4")
    masks = balanced_inclusion(len(shadow_y), shadows, seed)
    conf = _confidences(trainer, shadow_x, shadow_y, masks, x, y, seed, device)
    observed = scaled_confidence(logits(target, x, device), y)
    mu_out = conf.mean(axis=0)
    sd_out = _pooled_sd(conf - mu_out, np.ones(conf.shape, dtype=bool))
    return (observed - mu_out) / sd_out


def _pooled_sd(residuals: np.ndarray, mask: np.ndarray) -> float:
    """One standard deviation for all records: residuals pooled, one mean fitted per record."""
    dof = int(mask.sum()) - int(mask.any(axis=0).sum())
    sd = float(np.sqrt(np.sum(np.where(mask, residuals, 0.0) ** 2) / dof)) if dof > 0 else 0.0
    return max(sd, 1e-6)
