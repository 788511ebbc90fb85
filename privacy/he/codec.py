"""Model update <-> encrypted chunks, the coordinator's sum, and the institution's average.

An institution scales its flat update by its weight fraction f = examples / max_weight and
appends f itself in every spare value of the last chunk (at least `weight_replicas` of
them). Summing the contributions then yields, under encryption, both sum(f_i * x_i) and
the total weight sum(f_i); the institutions divide after decrypting, and the coordinator
never learns a data-set size. Values are packed two per CKKS slot (real and imaginary
part). Pure numpy in and out: no torch, no Flower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tenseal.sealapi as seal

from privacy.he.context import HEContext, SecretContext
from privacy.he.errors import HEFormatError, HERangeError
from privacy.he.params import HEParams
from privacy.he.serialization import load_from_bytes, save_bytes


@dataclass(frozen=True)
class ChunkLayout:
    num_values: int
    values_per_chunk: int
    num_chunks: int

    @property
    def padded(self) -> int:
        return self.num_chunks * self.values_per_chunk


def chunk_layout(params: HEParams, num_values: int) -> ChunkLayout:
    if num_values < 1:
        raise HEFormatError("an update needs at least one value")
    per = params.values_per_chunk
    return ChunkLayout(num_values, per, math.ceil((num_values + params.weight_replicas) / per))


def weight_fraction(params: HEParams, weight: float) -> float:
    if not (math.isfinite(weight) and weight > 0):
        raise HERangeError(
            f"an institution's weight must be a positive number of examples, got {weight}"
        )
    if weight > params.max_weight:
        raise HERangeError(
            f"weight {weight:g} exceeds the federation's max_weight {params.max_weight}; "
            "train on at most that many examples or re-run the key ceremony with a larger "
            "--max-examples"
        )
    return weight / params.max_weight


def encrypt_update(
    ctx: SecretContext, values: np.ndarray, weight: float, cohort: int
) -> list[bytes]:
    """Weight, pack and encrypt one institution's update for a round of `cohort` senders."""
    params = ctx.params
    flat = np.asarray(values, dtype=np.float64).ravel()
    lay = chunk_layout(params, flat.size)
    f = weight_fraction(params, weight)
    padded = np.full(lay.padded, f, dtype=np.float64)
    np.multiply(flat, f, out=padded[: flat.size])
    if not np.isfinite(padded).all():
        raise HERangeError("the update holds NaN or infinite values; training diverged")
    peak = int(np.argmax(np.abs(padded)))
    if abs(padded[peak]) > params.max_abs_value:
        raise HERangeError(
            f"weighted value {padded[peak]:.4g} at position {peak} exceeds the federation's "
            f"max_abs_value {params.max_abs_value:g} (value {flat[peak]:.4g} x weight fraction "
            f"{f:.4g}); clip the model's weights or re-run the key ceremony with a larger bound"
        )
    scale = ctx.scale(cohort)
    slots = padded.view(np.complex128).reshape(lay.num_chunks, -1)
    chunks = []
    for i, row in enumerate(slots):
        plain = seal.Plaintext()
        ctx.encoder.encode(row.tolist(), scale, plain)
        sealed = save_bytes(ctx.encryptor.encrypt_symmetric(plain))
        chunks.append(ctx.shape.compact(sealed, scale, seeded=True, what=f"chunk {i}"))
    return chunks


@dataclass(frozen=True)
class Average:
    values: np.ndarray
    total_weight: float  # examples behind the average, known only to key holders


def decrypt_average(
    ctx: SecretContext, chunks: Sequence[bytes], num_values: int, cohort: int
) -> Average:
    """Decrypt a summed aggregate and divide by its encrypted total weight."""
    lay = chunk_layout(ctx.params, num_values)
    if len(chunks) != lay.num_chunks:
        raise HEFormatError(
            f"the aggregate has {len(chunks)} chunks, a model of {num_values} values needs "
            f"{lay.num_chunks}: the coordinator runs a different model"
        )
    scale = ctx.scale(cohort)
    out = np.empty(lay.padded, dtype=np.float64)
    per = lay.values_per_chunk
    for i, chunk in enumerate(chunks):
        ct = seal.Ciphertext()
        expanded = ctx.shape.expand(chunk, scale, seeded=False)
        load_from_bytes(ct, ctx.seal, expanded, f"aggregate chunk {i}")
        plain = seal.Plaintext()
        ctx.decryptor.decrypt(ct, plain)
        decoded = np.asarray(ctx.encoder.decode_complex(plain), dtype=np.complex128)
        out[i * per : (i + 1) * per] = decoded.view(np.float64)
    total = float(out[num_values:].mean())
    if not total > 0:
        raise HEFormatError(
            f"the aggregate's total weight decrypts to {total:.3g}: it was built with another "
            "key or cohort size"
        )
    return Average(out[:num_values] / total, total * ctx.params.max_weight)


class EncryptedSum:
    """The coordinator's running sum; an update joins only once all its chunks loaded."""

    def __init__(self, ctx: HEContext, num_values: int, cohort: int) -> None:
        self.ctx = ctx
        self.layout = chunk_layout(ctx.params, num_values)
        self.scale = ctx.scale(cohort)
        self.count = 0
        self._acc: list[seal.Ciphertext] = []

    def check_sizes(self, chunks: Sequence[bytes]) -> None:
        """The cheap checks, before any deserialisation."""
        if len(chunks) != self.layout.num_chunks:
            raise HEFormatError(
                f"{len(chunks)} chunks sent, {self.layout.num_chunks} expected for "
                f"{self.layout.num_values} values"
            )
        want = self.ctx.shape.seeded_size()
        for i, chunk in enumerate(chunks):
            if len(chunk) != want:
                raise HEFormatError(f"chunk {i} has {len(chunk)} bytes, {want} expected")

    def load(self, chunks: Sequence[bytes]) -> list[seal.Ciphertext]:
        """Deserialise one update; raises HEFormatError and leaves the sum untouched."""
        self.check_sizes(chunks)
        loaded = []
        for i, chunk in enumerate(chunks):
            ct = seal.Ciphertext()
            expanded = self.ctx.shape.expand(chunk, self.scale, seeded=True)
            load_from_bytes(ct, self.ctx.seal, expanded, f"chunk {i}")
            loaded.append(ct)
        return loaded

    def add(self, update: list[seal.Ciphertext]) -> None:
        if len(update) != self.layout.num_chunks:
            raise HEFormatError("an update of another size cannot join this sum")
        if not self._acc:
            self._acc = update
        else:
            for acc, ct in zip(self._acc, update, strict=True):
                self.ctx.evaluator.add_inplace(acc, ct)
        self.count += 1

    def to_bytes(self) -> list[bytes]:
        if not self._acc:
            raise HEFormatError("nothing was added to the sum")
        return [
            self.ctx.shape.compact(save_bytes(ct), self.scale, seeded=False, what=f"sum chunk {i}")
            for i, ct in enumerate(self._acc)
        ]


@dataclass(frozen=True)
class StateLayout:
    """Names, shapes and dtypes of a model state, in order: the inverse of the flattening."""

    entries: tuple[tuple[str, tuple[int, ...], str], ...]

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape, _ in self.entries)

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        if flat.size != self.size:
            raise HEFormatError(f"{flat.size} values received, the local model has {self.size}")
        out: dict[str, np.ndarray] = {}
        start = 0
        for name, shape, dtype in self.entries:
            n = math.prod(shape)
            part = flat[start : start + n].reshape(shape)
            kind = np.dtype(dtype).kind
            if kind in "iub":
                part = np.rint(part)
            out[name] = part.astype(dtype)
            start += n
        return out


def state_layout(state: Mapping[str, np.ndarray]) -> StateLayout:
    """Shapes and dtypes only; accepts anything numpy can view (a CPU torch state too)."""
    arrays = [(k, np.asarray(v)) for k, v in state.items()]
    return StateLayout(tuple((k, tuple(a.shape), a.dtype.str) for k, a in arrays))


def flatten_state(state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, StateLayout]:
    """One float64 vector of every entry, in the mapping's order."""
    arrays = [(k, np.asarray(v)) for k, v in state.items()]
    layout = StateLayout(tuple((k, tuple(a.shape), a.dtype.str) for k, a in arrays))
    if not arrays:
        return np.empty(0), layout
    return np.concatenate([a.astype(np.float64, copy=False).ravel() for _, a in arrays]), layout
