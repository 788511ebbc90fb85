"""What federation costs: the same model trained on the pooled data, and the final model
evaluated where each institution's test split lives, predictions pooled for ROC curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fl_client.data import Encoder, FeatureStats, split
from fl_client.tasks.base import Task
from fl_client.training import (
    make_loader,
    make_optimizer,
    predict_proba,
    seed_everything,
    train_epochs,
)


@dataclass
class Pooled:
    """Labels and predicted probabilities pooled over institutions' test splits."""

    y: np.ndarray
    probs: np.ndarray


def institution_splits(
    frames: Sequence[pd.DataFrame], task: Task, test_fraction: float, seed: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    return [split(df, task.schema, test_fraction, seed) for df in frames]


def evaluate_federated(
    model: nn.Module,
    task: Task,
    splits: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    stats: FeatureStats | None = None,
) -> Pooled:
    """Each institution encodes its own test split as its ClientApp does, predictions pooled."""
    ys, ps = [], []
    for train, test in splits:
        enc = Encoder(task.schema).fit_stats(stats) if stats else Encoder(task.schema).fit(train)
        ys.append(enc.labels(test))
        ps.append(predict_proba(model, enc.features(test), torch.device("cpu")))
    return Pooled(np.concatenate(ys), np.concatenate(ps))


def train_centralized(
    task: Task,
    splits: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> Pooled:
    """Pool every institution's training split, train once, test on the pooled test splits."""
    train = pd.concat([s[0] for s in splits], ignore_index=True)
    test = pd.concat([s[1] for s in splits], ignore_index=True)
    enc = Encoder(task.schema).fit(train)
    seed_everything(seed)
    model = task.build_model()
    loader = make_loader(enc.features(train), enc.labels(train), batch_size, seed)
    train_epochs(
        model,
        loader,
        make_optimizer(model, learning_rate),
        task.loss(),
        epochs,
        torch.device("cpu"),
    )
    return Pooled(enc.labels(test), predict_proba(model, enc.features(test), torch.device("cpu")))
