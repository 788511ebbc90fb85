"""What a task is: the contract every institution and the coordinator share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from torch import nn

from fl_client.data.schema import Schema


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    schema: Schema
    model_factory: Callable[[Schema], nn.Module]
    reference_loader: Callable[[], pd.DataFrame]
    purpose: str
    learning_rate: float = 0.05
    batch_size: int = 32
    local_epochs: int = 1

    @property
    def modality(self) -> str:
        return self.schema.modality

    @property
    def is_binary(self) -> bool:
        return self.schema.num_classes == 2

    def build_model(self) -> nn.Module:
        return self.model_factory(self.schema)

    def loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def reference_data(self) -> pd.DataFrame:
        """The bundled data set in this task's canonical columns (simulations, tests)."""
        return self.reference_loader()

    def metrics(self, y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        """Accuracy for all tasks, ROC AUC (positive = last class) for binary ones."""
        out = {"accuracy": float(np.mean(probs.argmax(axis=1) == y_true))} if len(y_true) else {}
        if self.is_binary and len(np.unique(y_true)) == 2:
            out["auc"] = float(roc_auc_score(y_true, probs[:, 1]))
        return out
