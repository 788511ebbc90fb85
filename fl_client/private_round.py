"""One round of local training, private by default.

The order matters for the institution's guarantee: check the budget and write the charge to
its ledger first, then train; so a crash can over-count a round but never hide one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fl_client.data import LocalData
from fl_client.node import NodeSettings
from fl_client.run_config import TrainConfig
from fl_client.tasks.base import Task
from fl_client.training import TrainStats, make_loader, make_optimizer, train_epochs
from privacy.dp import DPConfig, DPError, calibrate_noise, dp_ready, make_private, noise_seed
from privacy.dp import sampling as dp_sampling
from privacy.ledger import Ledger


def _noise_multiplier(
    ledger: Ledger,
    node: NodeSettings,
    cfg: TrainConfig,
    dp: DPConfig,
    sample_rate: float,
    steps: int,
) -> float:
    """Calibrated once per run: later rounds reuse the run's σ from the ledger."""
    if dp.noise_multiplier is not None:
        return dp.noise_multiplier
    for charge in ledger.charges(node.dataset_id, cfg.run_id):
        if charge.sample_rate == sample_rate and charge.steps == steps:
            return charge.noise_multiplier
    assert dp.target_epsilon is not None
    return calibrate_noise(
        dp.target_epsilon, dp.delta, sample_rate, cfg.total_rounds * steps, dp.accountant
    )


@dataclass
class RoundOutcome:
    model: torch.nn.Module
    stats: TrainStats
    metrics: dict[str, float]


def train_round(
    node: NodeSettings,
    cfg: TrainConfig,
    dp: DPConfig | None,
    server_round: int,
    task: Task,
    data: LocalData,
    model: torch.nn.Module,
    device: torch.device,
    seed: int,
) -> RoundOutcome:
    """Train the global model on local data; with DP, charge the ledger before training."""
    model = model.to(device)
    loader = make_loader(data.x_train, data.y_train, cfg.batch_size, seed)
    if dp is None:
        if not node.allow_no_dp:
            raise DPError(
                "this run trains without differential privacy and the institution requires it; "
                "start the node with allow-no-dp=true to join non-private runs"
            )
        optimizer = make_optimizer(model, cfg.learning_rate)
        stats = train_epochs(model, loader, optimizer, task.loss(), cfg.local_epochs, device)
        return RoundOutcome(model, stats, {})

    dp.check_dataset(data.num_train)
    model = dp_ready(model, f"the {task.name} model")
    sample_rate, per_epoch = dp_sampling(data.num_train, cfg.batch_size)
    steps = cfg.local_epochs * per_epoch
    ledger = Ledger(node.ledger_path)
    try:
        sigma = _noise_multiplier(ledger, node, cfg, dp, sample_rate, steps)
        charge = ledger.charge(
            node.dataset_id,
            cfg.run_id,
            server_round,
            (sigma, sample_rate, steps),
            dp.delta,
            dp.accountant,
            default_budget=node.dp_budget,
        )
    finally:
        ledger.close()
    private = make_private(
        model,
        make_optimizer(model, cfg.learning_rate),
        loader,
        task.loss(),
        dp,
        sigma,
        noise_seed(node.state_dir, cfg.run_id, server_round, node.dataset_id),
    )
    stats = train_epochs(
        private.module,
        private.loader,
        private.optimizer,
        private.criterion,
        cfg.local_epochs,
        device,
    )
    metrics = {
        "epsilon": charge.run_epsilon,
        "dp-noise-multiplier": sigma,
        "dp-sample-rate": sample_rate,
        "dp-steps": float(steps),
    }
    return RoundOutcome(model, stats, metrics)
