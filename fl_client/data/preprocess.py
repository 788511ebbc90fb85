"""Turn a validated table into tensors, with statistics computed on local data only.

Standardisation uses the institution's own training split; no statistic leaves the
institution. Categories are one-hot encoded against the task's fixed vocabulary so every
institution produces the same feature layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fl_client.data.errors import DataError
from fl_client.data.schema import Schema


@dataclass
class LocalData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def num_test(self) -> int:
        return len(self.y_test)


@dataclass(frozen=True)
class FeatureStats:
    """Sufficient statistics of the numeric columns: they add up across institutions.

    Summed over the federation (under encryption when HE is on, so the coordinator sees only
    totals), they let every institution standardise on the same scale. Standardising on
    local statistics alone breaks under label skew: a hospital that sees mostly malignant
    tumours would centre its features on malignant ones.
    """

    count: float
    total: tuple[float, ...]
    total_sq: tuple[float, ...]

    @classmethod
    def of(cls, df: pd.DataFrame, schema: Schema) -> FeatureStats:
        cols = [c.name for c in schema.columns if c.kind == "numeric"]
        x = df[cols].to_numpy(dtype=np.float64)
        return cls(float(len(x)), tuple(x.sum(axis=0)), tuple((x**2).sum(axis=0)))

    def __add__(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats(
            self.count + other.count,
            tuple(np.add(self.total, other.total)),
            tuple(np.add(self.total_sq, other.total_sq)),
        )

    def to_json(self) -> str:
        return json.dumps([self.count, list(self.total), list(self.total_sq)])

    @classmethod
    def from_json(cls, text: str) -> FeatureStats:
        count, total, total_sq = json.loads(text)
        return cls(float(count), tuple(total), tuple(total_sq))


class Encoder:
    """Fitted on one split (or on federation-wide statistics), applied to any other."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _numeric(self, df: pd.DataFrame) -> np.ndarray:
        cols = [c.name for c in self.schema.columns if c.kind == "numeric"]
        return df[cols].to_numpy(dtype=np.float64)

    def fit(self, df: pd.DataFrame) -> Encoder:
        return self.fit_stats(FeatureStats.of(df, self.schema))

    def fit_stats(self, stats: FeatureStats) -> Encoder:
        total, total_sq = np.asarray(stats.total), np.asarray(stats.total_sq)
        n = max(stats.count, 1.0)
        if self.schema.modality == "image":  # one scale for all pixels
            n_all = n * len(total)
            mean = total.sum() / n_all
            var = total_sq.sum() / n_all - mean**2
            self.mean = np.full(len(total), mean)
            self.std = np.full(len(total), max(float(np.sqrt(max(var, 0.0))), 1e-6))
        else:
            self.mean = total / n
            std = np.sqrt(np.maximum(total_sq / n - self.mean**2, 0.0))
            self.std = np.where(std < 1e-9, 1.0, std)
        return self

    def features(self, df: pd.DataFrame) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise RuntimeError("Encoder.fit must run before Encoder.features")
        num = (self._numeric(df) - self.mean) / self.std
        parts: list[np.ndarray] = []
        n_idx = 0
        for column in self.schema.columns:
            if column.kind == "numeric":
                parts.append(num[:, n_idx : n_idx + 1])
                n_idx += 1
            else:
                codes = pd.Categorical(df[column.name], categories=column.categories).codes
                parts.append(np.eye(len(column.categories))[codes])
        x = np.concatenate(parts, axis=1).astype(np.float32)
        if self.schema.modality == "image" and self.schema.image_shape:
            x = x.reshape(len(x), *self.schema.image_shape)
        return x

    def labels(self, df: pd.DataFrame) -> np.ndarray:
        codes = pd.Categorical(df[self.schema.target.name], categories=self.schema.classes).codes
        return codes.astype(np.int64)


def split(
    df: pd.DataFrame, schema: Schema, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified where every class has two records, plain otherwise."""
    if len(df) < 4:
        raise DataError(
            f"only {len(df)} records: an institution needs at least 4 to train and test"
        )
    counts = df[schema.target.name].value_counts()
    stratify = df[schema.target.name] if counts.min() >= 2 and len(counts) > 1 else None
    n_test = max(1, round(len(df) * test_fraction))
    if stratify is not None and n_test < len(counts):
        stratify = None
    train, test = train_test_split(df, test_size=n_test, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def prepare(
    df: pd.DataFrame,
    schema: Schema,
    test_fraction: float = 0.2,
    seed: int = 0,
    stats: FeatureStats | None = None,
) -> LocalData:
    """Split, then encode: with federation-wide `stats` if given, else the local train split's."""
    train, test = split(df, schema, test_fraction, seed)
    enc = Encoder(schema).fit_stats(stats) if stats else Encoder(schema).fit(train)
    return LocalData(enc.features(train), enc.labels(train), enc.features(test), enc.labels(test))
