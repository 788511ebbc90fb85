"""How one institution's own table becomes the task's table.

The knowledge graph's alignment produces a `FeatureMapping` from a data set card; it travels
to the institution as JSON and is applied here, before any training, so every institution
feeds the model the same columns, in the same units, with the same category labels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pandas as pd

from fl_client.data.errors import DataError


@dataclass(frozen=True)
class ColumnRule:
    """value_in_task_unit = local_value * scale + offset; categories renamed by `recode`."""

    source: str
    scale: float = 1.0
    offset: float = 0.0
    recode: dict[str, str] | None = None


@dataclass(frozen=True)
class FeatureMapping:
    rules: dict[str, ColumnRule] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({k: asdict(v) for k, v in sorted(self.rules.items())})

    @classmethod
    def from_json(cls, text: str) -> FeatureMapping:
        raw = json.loads(text) if text else {}
        return cls({k: ColumnRule(**v) for k, v in raw.items()})

    @classmethod
    def identity(cls, columns: list[str]) -> FeatureMapping:
        return cls({c: ColumnRule(source=c) for c in columns})

    def apply(self, df: pd.DataFrame, origin: str = "table") -> pd.DataFrame:
        """Return a frame holding exactly the task's columns, converted."""
        missing = [r.source for r in self.rules.values() if r.source not in df.columns]
        if missing:
            raise DataError(
                f"{origin}: column {missing[0]!r} named in the feature mapping is missing; "
                "fix the data set card or the file"
            )
        out = {}
        for task_col, rule in self.rules.items():
            col = df[rule.source]
            if rule.recode:
                labels = col.astype("string")
                unknown = sorted(set(labels.dropna()) - set(rule.recode))
                if unknown:
                    raise DataError(
                        f"{origin}: column {rule.source!r} has value {unknown[0]!r} that the "
                        "card's category recoding does not cover; add it to the card"
                    )
                col = labels.map(rule.recode)
            elif rule.scale != 1.0 or rule.offset != 0.0:
                col = pd.to_numeric(col, errors="coerce") * rule.scale + rule.offset
            out[task_col] = col
        return pd.DataFrame(out, index=df.index)
