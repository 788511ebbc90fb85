"""The per-run settings the coordinator sends with every message, and their wire form."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from flwr.app import ConfigRecord


@dataclass(frozen=True)
class TrainConfig:
    run_id: str
    task: str
    total_rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    test_fraction: float = 0.2

    def to_record(self, **extra: Any) -> ConfigRecord:
        values = {k.replace("_", "-"): v for k, v in asdict(self).items()}
        values.update(extra)
        return ConfigRecord(values)

    @classmethod
    def from_record(cls, record: ConfigRecord) -> TrainConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key in record:
                values[f.name] = record[key]
        missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
        if missing:
            raise ValueError(
                f"coordinator message lacks {missing[0]!r}; client and server versions differ"
            )
        return cls(**values)
