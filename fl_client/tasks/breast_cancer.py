"""breast-cancer: is a tumour malignant? (Wisconsin diagnostic data, shipped with scikit-learn)."""

from __future__ import annotations

from functools import cache

import pandas as pd
from sklearn.datasets import load_breast_cancer

from fl_client.data.schema import Column, Schema
from fl_client.tasks.base import Task
from fl_client.tasks.models import MLP


def _name(feature: str) -> str:
    return feature.replace(" ", "_")


@cache
def _raw() -> tuple[tuple[str, ...], pd.DataFrame]:
    bunch = load_breast_cancer()
    names = tuple(_name(f) for f in bunch.feature_names)
    df = pd.DataFrame(bunch.data, columns=list(names))
    # scikit-learn codes 0 = malignant, 1 = benign.
    df["diagnosis"] = ["malignant" if t == 0 else "benign" for t in bunch.target]
    return names, df


SCHEMA = Schema(
    columns=tuple(Column(n, "numeric", description=n.replace("_", " ")) for n in _raw()[0]),
    target=Column(
        "diagnosis",
        "categorical",
        categories=("benign", "malignant"),
        description="malignant = positive class",
    ),
)


def reference_data() -> pd.DataFrame:
    return _raw()[1].copy()


TASK = Task(
    name="breast-cancer",
    description="Tabular binary classification: malignant tumour (Wisconsin, 569 patients)",
    schema=SCHEMA,
    model_factory=lambda s: MLP(s.input_dim, s.num_classes, hidden=(32, 16)),
    reference_loader=reference_data,
    purpose="medical-diagnosis",
    learning_rate=0.05,
    batch_size=32,
    local_epochs=2,
)
