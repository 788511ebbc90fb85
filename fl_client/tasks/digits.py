"""digits: which handwritten digit is this 8x8 image? (UCI digits, shipped with scikit-learn).

The image modality: a table of 64 pixel columns (row-major), reshaped to 1x8x8.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
from sklearn.datasets import load_digits

from fl_client.data.schema import Column, Schema
from fl_client.tasks.base import Task
from fl_client.tasks.models import SmallCNN

PIXELS = tuple(f"pixel_{i}" for i in range(64))

SCHEMA = Schema(
    columns=tuple(
        Column(p, "numeric", unit="intensity (0-16)", description=f"row {i // 8}, column {i % 8}")
        for i, p in enumerate(PIXELS)
    ),
    target=Column("digit", "categorical", categories=tuple(str(d) for d in range(10))),
    modality="image",
    image_shape=(1, 8, 8),
)


@cache
def _reference() -> pd.DataFrame:
    bunch = load_digits()
    df = pd.DataFrame(bunch.data, columns=list(PIXELS))
    df["digit"] = [str(t) for t in bunch.target]
    return df


def reference_data() -> pd.DataFrame:
    return _reference().copy()


TASK = Task(
    name="digits",
    description="Image classification: handwritten digits, 8x8 grey (1,797 images, 10 classes)",
    schema=SCHEMA,
    model_factory=lambda s: SmallCNN(s.num_classes),
    reference_loader=reference_data,
    purpose="research",
    learning_rate=0.05,
    batch_size=32,
    local_epochs=1,
)
