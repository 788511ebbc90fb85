import numpy as np
import pytest

from simulations.partition import PartitionError, partition_indices


def _labels(n: int = 1000, classes: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n)


@pytest.mark.parametrize("kind", ["iid", "dirichlet"])
def test_every_record_lands_exactly_once(kind: str) -> None:
    labels = _labels()
    parts = partition_indices(labels, 7, kind, alpha=0.5, seed=3)
    merged = np.concatenate(parts)
    assert len(merged) == len(labels)
    assert np.array_equal(np.sort(merged), np.arange(len(labels)))


@pytest.mark.parametrize("kind", ["iid", "dirichlet"])
def test_same_seed_same_split_other_seed_other_split(kind: str) -> None:
    labels = _labels()
    a = partition_indices(labels, 5, kind, alpha=0.5, seed=1)
    b = partition_indices(labels, 5, kind, alpha=0.5, seed=1)
    c = partition_indices(labels, 5, kind, alpha=0.5, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def _skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label mix and the global one."""
    classes = np.unique(labels)
    overall = np.array([np.mean(labels == c) for c in classes])
    tv = [
        0.5 * np.abs(np.array([np.mean(labels[p] == c) for c in classes]) - overall).sum()
        for p in parts
    ]
    return float(np.mean(tv))


def test_label_skew_follows_alpha() -> None:
    labels = _labels(3000, classes=4)
    skews = {
        alpha: np.mean(
            [
                _skew(labels, partition_indices(labels, 6, "dirichlet", alpha, seed=s))
                for s in range(5)
            ]
        )
        for alpha in (0.1, 1.0, 100.0)
    }
    assert skews[0.1] > skews[1.0] > skews[100.0]
    assert skews[100.0] < 0.05  # nearly IID
    assert skews[0.1] > 0.3  # strongly skewed


def test_iid_keeps_label_mix() -> None:
    labels = _labels(5000, classes=2)
    assert _skew(labels, partition_indices(labels, 5, "iid", seed=0)) < 0.03


def test_every_client_gets_a_minimum() -> None:
    labels = _labels(500, classes=2)
    parts = partition_indices(labels, 10, "dirichlet", alpha=0.3, seed=0, min_size=10)
    assert min(len(p) for p in parts) >= 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_clients": 200}, "use fewer --clients"),
        ({"num_clients": 3, "kind": "dirichlet", "alpha": 0.0}, "--alpha must be > 0"),
        ({"num_clients": 3, "kind": "shards"}, "unknown partition"),
    ],
)
def test_bad_arguments_are_clear(kwargs: dict, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        partition_indices(_labels(100), **kwargs)
