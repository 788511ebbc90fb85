"""Split one data set across simulated institutions, IID or label-skewed (Dirichlet).

Deterministic by seed; every record lands in exactly one institution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

PartitionKind = Literal["iid", "dirichlet"]


class PartitionError(ValueError):
    pass


def partition_indices(
    labels: np.ndarray,
    num_clients: int,
    kind: PartitionKind = "iid",
    alpha: float = 1.0,
    seed: int = 0,
    min_size: int = 10,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Indices per client. Dirichlet: each class is spread over clients by Dir(alpha).

    Smaller alpha means stronger label skew. Draws are repeated (deterministically) until
    every client holds at least `min_size` records, so no institution is left empty.
    """
    n = len(labels)
    if num_clients < 1:
        raise PartitionError("--clients must be at least 1")
    if n < num_clients * min_size:
        raise PartitionError(
            f"{n} records cannot give {num_clients} institutions {min_size} records each; "
            "use fewer --clients"
        )
    rng = np.random.default_rng(seed)
    if kind == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), num_clients)]
    if kind != "dirichlet":
        raise PartitionError(f"unknown partition {kind!r}; use iid or dirichlet")
    if alpha <= 0:
        raise PartitionError("--alpha must be > 0 (smaller = more label skew)")
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise PartitionError(
        f"no Dirichlet split with alpha={alpha} gave every institution {min_size} records; "
        "raise --alpha or use fewer --clients"
    )
