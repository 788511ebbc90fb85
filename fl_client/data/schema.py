"""The input a task expects: columns, their kinds and units, the label.

Every side agrees on this: the task registry declares it, the knowledge graph maps each
institution's own columns onto it, and the data loader checks local files against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["numeric", "categorical"]
Modality = Literal["tabular", "image"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    categories: tuple[str, ...] = ()
    unit: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind == "categorical" and not self.categories:
            raise ValueError(f"categorical column {self.name!r} needs its categories")


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    target: Column
    modality: Modality = "tabular"
    image_shape: tuple[int, ...] | None = None
    _index: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({c.name: c for c in self.columns})
        if self.target.kind != "categorical":
            raise ValueError("the target column must be categorical (classification tasks)")

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.target.categories

    @property
    def num_classes(self) -> int:
        return len(self.target.categories)

    def column(self, name: str) -> Column:
        return self._index[name]

    @property
    def input_dim(self) -> int:
        """Width of the encoded feature vector (one-hot categories expand)."""
        return sum(len(c.categories) if c.kind == "categorical" else 1 for c in self.columns)
