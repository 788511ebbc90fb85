"""What an attacker reads off a trained model for one record, and the loss-threshold attack.

Scores are oriented so that higher means "more likely a training member".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def logits(
    model: nn.Module, x: np.ndarray, device: torch.device | None = None, batch_size: int = 2048
) -> np.ndarray:
    """Raw model outputs, in evaluation mode, computed in batches."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.to(device).eval()
    out = [
        model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device))
        .double()
        .cpu()
        .numpy()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0))


def example_losses(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy of each record under logits `z` (float64, numerically stable)."""
    t = torch.from_numpy(z)
    return nn.functional.cross_entropy(t, torch.from_numpy(y).long(), reduction="none").numpy()


def scaled_confidence(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log(p_y / (1 − p_y)): the logit-scaled confidence LiRA models as Gaussian.

    Computed as z_y − logsumexp(z_{≠y}) so confident predictions do not round to ±inf.
    """
    t = torch.from_numpy(z)
    idx = torch.from_numpy(y).long()
    true = t.gather(1, idx[:, None])[:, 0]
    others = t.scatter(1, idx[:, None], float("-inf"))
    return (true - torch.logsumexp(others, dim=1)).numpy()


def loss_scores(
    model: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device | None = None
) -> np.ndarray:
    """The loss-threshold attack (Yeom et al. 2018): members tend to have lower loss."""
    return -example_losses(logits(model, x, device), y)
