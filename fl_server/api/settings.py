"""What the coordinator's API is configured with (CLI options and environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KG_DIR_ENV = "FEDKG_KG_DIR"


@dataclass(frozen=True)
class ApiSettings:
    database_url: str | None = None  # None: $FEDKG_DATABASE_URL, else a SQLite file
    # Where the knowledge graph is kept; None: in memory, rebuilt from the stored cards.
    kg_dir: Path | None = None
    max_body_bytes: int = 1_000_000
    sparql_timeout_s: float = 10.0
    sparql_limit: int = 10_000

    @classmethod
    def from_env(cls, **overrides: object) -> ApiSettings:
        kg = os.environ.get(KG_DIR_ENV)
        base = cls(kg_dir=Path(kg) if kg else None)
        return cls(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})  # type: ignore[arg-type]
