"""What homomorphic aggregation costs, measured side by side in one process.

Default table: for models of about 10k, 100k and 1M parameters, bytes per parameter on the
wire and the time to encrypt one update, sum the updates of `--clients` institutions and
decrypt the sum, for (a) plaintext float32, (b) fedkg's CKKS defaults and (c) NVIDIA
FLARE's default CKKS setting (TenSEAL ckks_vector, ring 8192, primes [60, 40, 40], scale
2^40), with ratios against plaintext.

`--candidates` prints the parameter trade-off table of docs/he_parameters.md instead:
wire size and measured aggregation error for each candidate parameter set.

    .venv/bin/python benchmarks/he_overhead.py [--sizes 10000 100000 1000000] [--clients 10]
    .venv/bin/python benchmarks/he_overhead.py --candidates
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tenseal as ts
import tenseal.sealapi as seal
from rich.console import Console
from rich.table import Table

from privacy.he import (
    EncryptedSum,
    HEParams,
    PublicContext,
    SecretContext,
    decrypt_average,
    encrypt_update,
    generate_keys,
    load_public_context,
    load_secret_context,
)
from privacy.he.serialization import save_bytes

console = Console(width=170)


@dataclass
class Cost:
    scheme: str
    params: int
    up_bytes: int  # one institution's update
    down_bytes: int  # the aggregate sent back
    encrypt_s: float  # one institution
    sum_s: float  # all clients, deserialisation included
    decrypt_s: float
    max_error: float


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def workload(size: int, clients: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-1, 1, (clients, size)).astype(np.float32)
    weights = rng.integers(100, 50_000, clients).astype(np.float64)
    exact = (weights[:, None] * xs.astype(np.float64)).sum(0) / weights.sum()
    return xs, weights, exact


def plaintext(xs: np.ndarray, weights: np.ndarray, exact: np.ndarray, repeat: int) -> Cost:
    enc_s, blob = best_of(repeat, lambda: xs[0].tobytes())
    blobs = [x.tobytes() for x in xs]

    def total() -> np.ndarray:
        acc = np.zeros(xs.shape[1], dtype=np.float64)
        for w, b in zip(weights, blobs, strict=True):
            acc += w * np.frombuffer(b, dtype=np.float32)
        return (acc / weights.sum()).astype(np.float32)

    sum_s, avg = best_of(repeat, total)
    out = avg.tobytes()  # type: ignore[union-attr]
    dec_s, back = best_of(repeat, lambda: np.frombuffer(out, dtype=np.float32))
    err = float(np.abs(np.asarray(back, dtype=np.float64) - exact).max())
    return Cost("plaintext float32", xs.shape[1], len(blob), len(out), enc_s, sum_s, dec_s, err)  # type: ignore[arg-type]


def fedkg(
    sk: SecretContext,
    pk: PublicContext,
    xs: np.ndarray,
    weights: np.ndarray,
    exact: np.ndarray,
    repeat: int,
    distinct: int,
) -> Cost:
    n, size = xs.shape
    enc_s, first = best_of(repeat, lambda: encrypt_update(sk, xs[0], weights[0], n))
    updates = [first] + [encrypt_update(sk, xs[i], weights[i], n) for i in range(1, distinct)]

    def total() -> list[bytes]:
        s = EncryptedSum(pk, size, n)
        for i in range(n):
            s.add(s.load(updates[i % distinct]))
        return s.to_bytes()

    sum_s, agg = best_of(repeat, total)
    dec_s, avg = best_of(repeat, lambda: decrypt_average(sk, agg, size, n))  # type: ignore[arg-type]
    reference = exact_for(xs, weights, distinct)
    err = float(np.abs(avg.values - reference).max())  # type: ignore[union-attr]
    up = sum(map(len, first))  # type: ignore[arg-type]
    down = sum(map(len, agg))  # type: ignore[arg-type]
    return Cost("fedkg CKKS (defaults)", size, up, down, enc_s, sum_s, dec_s, err)


def exact_for(xs: np.ndarray, weights: np.ndarray, distinct: int) -> np.ndarray:
    """The weighted average when client i sends client (i mod distinct)'s update."""
    n = xs.shape[0]
    idx = np.arange(n) % distinct
    src = xs[idx].astype(np.float64)
    w = weights[idx]
    return (w[:, None] * src).sum(0) / w.sum()


def flare(xs: np.ndarray, weights: np.ndarray, repeat: int, distinct: int) -> Cost:
    """NVIDIA FLARE's default: TenSEAL ckks_vector, public-key encryption, plaintext weights.

    FLARE's server knows the weights and multiplies by them; here institutions pre-scale
    and the server only adds, which is cheaper, so the comparison favours FLARE.
    """
    n, size = xs.shape
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40])
    ctx.global_scale = 2**40
    public = ts.context_from(ctx.serialize(save_secret_key=False))
    slots = 4096
    frac = weights / weights.sum()

    def encrypt(i: int) -> list[bytes]:
        v = xs[i].astype(np.float64) * frac[i]
        return [
            ts.ckks_vector(ctx, v[j : j + slots].tolist()).serialize()
            for j in range(0, size, slots)
        ]

    enc_s, first = best_of(repeat, lambda: encrypt(0))
    updates = [first] + [encrypt(i) for i in range(1, distinct)]

    def total() -> list[bytes]:
        acc = [ts.ckks_vector_from(public, b) for b in updates[0]]
        for i in range(1, n):
            for j, b in enumerate(updates[i % distinct]):
                acc[j] += ts.ckks_vector_from(public, b)
        return [a.serialize() for a in acc]

    sum_s, agg = best_of(repeat, total)

    def decrypt() -> np.ndarray:
        return np.concatenate([np.asarray(ts.ckks_vector_from(ctx, b).decrypt()) for b in agg])  # type: ignore[union-attr]

    dec_s, avg = best_of(repeat, decrypt)
    # FLARE's server knows the weights: it divides the decrypted sum by their total.
    sent_weight = frac[np.arange(n) % distinct].sum()
    average = np.asarray(avg)[:size] / sent_weight
    err = float(np.abs(average - exact_for(xs, weights, distinct)).max())
    up = sum(map(len, first))  # type: ignore[arg-type]
    down = sum(map(len, agg))  # type: ignore[arg-type]
    return Cost("FLARE default CKKS", size, up, down, enc_s, sum_s, dec_s, err)


def overhead_table(sizes: Sequence[int], clients: int, repeat: int, distinct: int) -> Table:
    tmp = Path(tempfile.mkdtemp(prefix="he-bench-"))
    files = generate_keys(tmp)
    sk, pk = load_secret_context(files.secret), load_public_context(files.public)
    table = Table(title=f"HE overhead: {clients} institutions, best of {repeat}")
    for col in (
        "params",
        "scheme",
        "B/param up",
        "B/param down",
        "× plain",
        "encrypt s",
        "sum s",
        "decrypt s",
        "× plain (enc+sum+dec)",
        "max error",
    ):
        table.add_column(col, justify="right" if col not in ("scheme",) else "left")
    for size in sizes:
        xs, weights, exact = workload(size, clients)
        base = plaintext(xs, weights, exact, repeat)
        rows = [
            base,
            fedkg(sk, pk, xs, weights, exact, repeat, distinct),
            flare(xs, weights, repeat, distinct),
        ]
        base_t = base.encrypt_s + base.sum_s + base.decrypt_s
        for c in rows:
            t = c.encrypt_s + c.sum_s + c.decrypt_s
            table.add_row(
                f"{size:,}",
                c.scheme,
                f"{c.up_bytes / size:.2f}",
                f"{c.down_bytes / size:.2f}",
                f"{c.up_bytes / base.up_bytes:.1f}",
                f"{c.encrypt_s:.4f}",
                f"{c.sum_s:.4f}",
                f"{c.decrypt_s:.4f}",
                f"{t / base_t:.0f}",
                f"{c.max_error:.1e}",
            )
        table.add_section()
    return table


# -- parameter candidates -----------------------------------------------------------------
CANDIDATES: list[tuple[int, tuple[int, ...]]] = [
    (2048, (40,)),
    (8192, (40, 40)),
    (2048, (48,)),
    (4096, (48,)),
    (8192, (48,)),
    (2048, (54,)),
]


def seal_zstd_bytes(sk: SecretContext, size: int) -> int:
    """What SEAL's own (zstd) save of the same seeded ciphertexts would cost."""
    plain = seal.Plaintext()
    sk.encoder.encode([0.1 + 0.2j] * (sk.params.poly_modulus_degree // 2), sk.scale(10), plain)
    one = len(save_bytes(sk.encryptor.encrypt_symmetric(plain)))
    per = sk.params.values_per_chunk
    return one * -(-(size + sk.params.weight_replicas) // per)


def scenario_error(sk: SecretContext, pk: PublicContext, weights: np.ndarray, size: int) -> float:
    rng = np.random.default_rng(1)
    n = len(weights)
    xs = rng.uniform(-10, 10, (n, size))
    total = EncryptedSum(pk, size, n)
    for x, w in zip(xs, weights, strict=True):
        total.add(total.load(encrypt_update(sk, x, float(w), n)))
    avg = decrypt_average(sk, total.to_bytes(), size, n).values
    return float(np.abs(avg - (weights[:, None] * xs).sum(0) / weights.sum()).max())


def candidates_table(size: int) -> Table:
    rng = np.random.default_rng(0)
    scenarios = {
        "1000 × 150..200k": np.round(np.exp(rng.uniform(np.log(150), np.log(200_000), 1000))),
        "1000 × 150": np.full(1000, 150.0),
        "2 × 150": np.full(2, 150.0),
        "50 × cap": np.full(50, float(HEParams().max_weight)),
    }
    table = Table(
        title=f"CKKS candidates: max |error| of the weighted average, |w| ≤ 10, {size:,} values"
    )
    for col in ("ring", "primes", "B/value wire", "B/value SEAL zstd", "encrypt 1M s", *scenarios):
        table.add_column(col, justify="right")
    for ring, bits in CANDIDATES:
        params = HEParams(poly_modulus_degree=ring, coeff_modulus_bits=bits)
        files = generate_keys(Path(tempfile.mkdtemp(prefix="he-cand-")), params)
        sk, pk = load_secret_context(files.secret), load_public_context(files.public)
        million = np.random.default_rng(2).uniform(-1, 1, 1_000_000)
        enc_s, chunks = best_of(1, lambda sk=sk, m=million: encrypt_update(sk, m, 1000.0, 10))
        wire = sum(map(len, chunks)) / 1e6  # type: ignore[arg-type]
        errors = [scenario_error(sk, pk, w, size) for w in scenarios.values()]
        table.add_row(
            str(ring),
            str(list(bits)),
            f"{wire:.2f}",
            f"{seal_zstd_bytes(sk, 1_000_000) / 1e6:.2f}",
            f"{enc_s:.2f}",
            *(f"{e:.1e}" for e in errors),
        )
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--clients", type=int, default=10, help="institutions whose updates are summed"
    )
    parser.add_argument(
        "--distinct", type=int, default=3, help="distinct updates encrypted (reused round-robin)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="best of this many timings")
    parser.add_argument(
        "--candidates", action="store_true", help="print the parameter trade-off table"
    )
    parser.add_argument(
        "--candidate-values", type=int, default=2000, help="model size in the candidate scenarios"
    )
    args = parser.parse_args(argv)
    if args.candidates:
        console.print(candidates_table(args.candidate_values))
        return
    distinct = max(1, min(args.distinct, args.clients))
    console.print(overhead_table(args.sizes, args.clients, args.repeat, distinct))


if __name__ == "__main__":
    main()
