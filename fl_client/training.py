"""Local training and evaluation: the same loops for institutions, simulations and baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fl_client.tasks.base import Task


def pick_device(preferred: str = "auto") -> torch.device:
    """`cuda` when the institution has a GPU, else CPU; an explicit choice is honoured."""
    if preferred == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preferred)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device auto"
        )
    return device


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return torch.Generator().manual_seed(seed)


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def make_loader(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> DataLoader:
    return DataLoader(
        tensor_dataset(x, y),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


def make_optimizer(model: nn.Module, learning_rate: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)


@dataclass
class TrainStats:
    loss: float
    examples_seen: int
    steps: int


def train_epochs(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    epochs: int,
    device: torch.device,
) -> TrainStats:
    model.to(device).train()
    total, seen, steps = 0.0, 0, 0
    for _ in range(epochs):
        for xb, yb in loader:
            if len(yb) == 0:  # Poisson sampling may draw an empty batch
                continue
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(yb)
            seen += len(yb)
            steps += 1
    return TrainStats(loss=total / max(seen, 1), examples_seen=seen, steps=steps)


@torch.no_grad()
def predict_proba(
    model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 2048
) -> np.ndarray:
    model.to(device).eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start : start + batch_size]).to(device)
        out.append(torch.softmax(model(xb), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def evaluate(
    model: nn.Module, task: Task, x: np.ndarray, y: np.ndarray, device: torch.device
) -> dict[str, float]:
    """Loss, accuracy and (binary tasks) ROC AUC on one split."""
    probs = predict_proba(model, x, device)
    eps = 1e-7
    loss = (
        float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0)))) if len(y) else 0.0
    )
    return {"loss": loss, **task.metrics(y, probs)}
