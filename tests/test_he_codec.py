"""The CKKS codec: error bounds, sizes, range checks, and the coordinator's sum."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from privacy.he import (
    DEFAULT_PARAMS,
    EncryptedSum,
    HEFormatError,
    HERangeError,
    PublicContext,
    SecretContext,
    chunk_layout,
    decrypt_average,
    encrypt_update,
    flatten_state,
    generate_keys,
    load_public_context,
    load_secret_context,
)

BOUND = 1e-5


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[SecretContext, PublicContext]:
    files = generate_keys(tmp_path_factory.mktemp("he-keys"))
    return load_secret_context(files.secret), load_public_context(files.public)


def aggregate(
    contexts: tuple[SecretContext, PublicContext], xs: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Encrypt every row, sum on the coordinator's context, decrypt on an institution's."""
    sk, pk = contexts
    n, size = xs.shape
    total = EncryptedSum(pk, size, cohort=n)
    for x, w in zip(xs, weights, strict=True):
        total.add(total.load(encrypt_update(sk, x, float(w), cohort=n)))
    assert total.count == n
    return decrypt_average(sk, total.to_bytes(), size, cohort=n).values


def weighted_average(xs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (weights[:, None] * xs).sum(axis=0) / weights.sum()


def test_thousand_institutions_with_realistic_weights_stay_within_bound(contexts) -> None:
    rng = np.random.default_rng(7)
    n = 1000
    weights = np.round(np.exp(rng.uniform(np.log(150), np.log(200_000), n)))
    xs = rng.uniform(-10, 10, (n, 1500))
    err = np.abs(aggregate(contexts, xs, weights) - weighted_average(xs, weights)).max()
    assert err < BOUND


def test_thousand_small_institutions_stay_within_bound(contexts) -> None:
    """The hardest documented case: 1,000 institutions of 150 examples each."""
    rng = np.random.default_rng(8)
    weights = np.full(1000, 150.0)
    xs = rng.uniform(-10, 10, (1000, 600))
    err = np.abs(aggregate(contexts, xs, weights) - weighted_average(xs, weights)).max()
    assert err < BOUND


def test_institutions_at_the_weight_cap_with_extreme_values_do_not_overflow(contexts) -> None:
    n = 50
    weights = np.full(n, float(DEFAULT_PARAMS.max_weight))
    xs = np.tile(np.array([10.0, -10.0, 9.999, -9.999]), (n, 100))
    err = np.abs(aggregate(contexts, xs, weights) - weighted_average(xs, weights)).max()
    assert err < BOUND


def test_a_million_parameters_round_trip(contexts) -> None:
    rng = np.random.default_rng(9)
    xs = rng.uniform(-10, 10, (2, 1_000_000))
    weights = np.array([1234.0, 56_789.0])
    err = np.abs(aggregate(contexts, xs, weights) - weighted_average(xs, weights)).max()
    assert err < BOUND


def test_decryption_reports_the_total_weight(contexts) -> None:
    sk, pk = contexts
    total = EncryptedSum(pk, 10, cohort=3)
    for w in (100, 2000, 30_000):
        total.add(total.load(encrypt_update(sk, np.ones(10), w, cohort=3)))
    avg = decrypt_average(sk, total.to_bytes(), 10, cohort=3)
    assert avg.total_weight == pytest.approx(32_100, abs=1e-3)
    np.testing.assert_allclose(avg.values, 1.0, atol=BOUND)


def test_wire_size_is_six_bytes_per_value(contexts) -> None:
    sk, pk = contexts
    size = 200_000
    chunks = encrypt_update(sk, np.zeros(size), 10.0, cohort=4)
    assert len(chunks) == chunk_layout(sk.params, size).num_chunks
    assert sum(map(len, chunks)) / size < 6.1
    assert {len(c) for c in chunks} == {pk.shape.seeded_size()}


def test_spare_slots_hold_at_least_the_configured_weight_replicas() -> None:
    per = DEFAULT_PARAMS.values_per_chunk
    for size in (1, per - DEFAULT_PARAMS.weight_replicas, per - 1, per, 10 * per + 3):
        lay = chunk_layout(DEFAULT_PARAMS, size)
        assert lay.padded - size >= DEFAULT_PARAMS.weight_replicas
        assert lay.padded - size < DEFAULT_PARAMS.weight_replicas + per


@pytest.mark.parametrize(
    ("values", "weight", "match"),
    [
        (np.array([0.0, 11.0]), DEFAULT_PARAMS.max_weight, "max_abs_value"),
        (np.array([0.0, 1.0]), DEFAULT_PARAMS.max_weight + 1, "max_weight"),
        (np.array([0.0, 1.0]), 0, "positive"),
        (np.array([0.0, np.nan]), 10, "NaN"),
    ],
)
def test_out_of_range_updates_are_refused(contexts, values, weight, match) -> None:
    with pytest.raises(HERangeError, match=match):
        encrypt_update(contexts[0], values, weight, cohort=2)


def test_large_values_pass_when_the_weight_fraction_is_small(contexts) -> None:
    sk, _ = contexts
    # 500 x (1000 / 2^20) < 10: the bound is on the weighted value.
    assert encrypt_update(sk, np.array([500.0]), 1000, cohort=2)


def test_bad_updates_never_touch_the_sum(contexts) -> None:
    sk, pk = contexts
    good = encrypt_update(sk, np.full(100, 2.0), 10.0, cohort=2)
    total = EncryptedSum(pk, 100, cohort=2)
    total.add(total.load(good))
    q_exceeding = [b"\xff" * len(good[0])]
    for bad, match in [
        (good + good, "chunks"),
        ([good[0][:-1]], "bytes"),
        (q_exceeding, "does not deserialise"),
    ]:
        with pytest.raises(HEFormatError, match=match):
            total.add(total.load(bad))
    assert total.count == 1
    avg = decrypt_average(sk, total.to_bytes(), 100, cohort=2)
    np.testing.assert_allclose(avg.values, 2.0, atol=BOUND)


def test_aggregate_of_another_model_size_is_refused(contexts) -> None:
    sk, pk = contexts
    total = EncryptedSum(pk, 5000, cohort=1)
    total.add(total.load(encrypt_update(sk, np.zeros(5000), 10.0, cohort=1)))
    with pytest.raises(HEFormatError, match="different model"):
        decrypt_average(sk, total.to_bytes(), 50, cohort=1)


def test_state_flattening_round_trips_shapes_and_dtypes() -> None:
    state = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([0.5], dtype=np.float64),
        "count": np.array(7, dtype=np.int64),
    }
    flat, layout = flatten_state(state)
    assert flat.shape == (8,) and layout.size == 8
    back = layout.unflatten(flat + 1e-7)
    assert list(back) == list(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_allclose(back[k], v, atol=1e-6)
    with pytest.raises(HEFormatError, match="local model"):
        layout.unflatten(flat[:-1])


def test_codec_imports_neither_torch_nor_flower() -> None:
    code = (
        "import sys, privacy.he\n"
        "bad = [m for m in ('torch', 'flwr') if m in sys.modules]\n"
        "sys.exit(f'imported {bad}' if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
