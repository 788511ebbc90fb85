"""How encrypted models travel in Flower records; the one definition both sides call.

Instruction (coordinator -> institution), in the message content:
  "arrays"  ArrayRecord  round 1: the plaintext initial model (every party may know it);
                         later: the encrypted aggregate (see below)
  "config"  ConfigRecord the run's training settings (Flower's FedAvg adds "server-round")
  "he"      ConfigRecord format, fingerprint, server-round, cohort (institutions asked this
                         round: sets the CKKS scale), values (model size)

Reply (institution -> coordinator):
  "arrays"  ArrayRecord  {"ciphertexts": uint8 array of shape (chunks, chunk bytes)}: one
                         row per seeded CKKS ciphertext (privacy.he.serialization)
  "he"      ConfigRecord format, fingerprint, server-round, cohort, values (echoed)
  "metrics" MetricRecord plaintext metrics; "num-examples" rounded to a power of two

Encrypted aggregate (what `aggregate_train` returns and Flower's round loop carries):
  ArrayRecord {"ciphertexts": uint8 (chunks, chunk bytes) of summed ciphertexts,
               "he-meta": uint8 JSON: format, fingerprint, server-round, cohort, values,
               contributors}

One 2-D array per update keeps the np.save header to one per message and lets the
coordinator check chunk count and size from the array's shape before reading any byte;
Flower itself slices large arrays for transport.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from privacy.he.codec import (
    chunk_layout,
    decrypt_average,
    encrypt_update,
    flatten_state,
    state_layout,
)
from privacy.he.context import HEContext, SecretContext
from privacy.he.errors import HEFormatError
from privacy.he.keys import require_fingerprint

FORMAT = "fedkg-ckks/1"
HE_KEY = "he"
ARRAYS_KEY = "arrays"
METRICS_KEY = "metrics"
CIPHERTEXTS = "ciphertexts"
META = "he-meta"
NUM_EXAMPLES = "num-examples"


class HERecordError(HEFormatError):
    """A reply or instruction that breaks the wire format; the message is the reason."""


@dataclass(frozen=True)
class RoundSpec:
    """What every message of one round must agree on."""

    fingerprint: str
    server_round: int
    cohort: int
    values: int

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(
            {
                "format": FORMAT,
                "fingerprint": self.fingerprint,
                "server-round": self.server_round,
                "cohort": self.cohort,
                "values": self.values,
            }
        )

    @classmethod
    def from_record(cls, record: ConfigRecord | None, what: str) -> RoundSpec:
        if record is None:
            raise HERecordError(
                f"{what} carries no '{HE_KEY}' record: not an encrypted-mode message"
            )
        if record.get("format") != FORMAT:
            raise HERecordError(f"{what} uses format {record.get('format')!r}, expected {FORMAT!r}")
        try:
            return cls(
                fingerprint=str(record["fingerprint"]),
                server_round=int(record["server-round"]),  # type: ignore[arg-type]
                cohort=int(record["cohort"]),  # type: ignore[arg-type]
                values=int(record["values"]),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HERecordError(f"{what}'s '{HE_KEY}' record is incomplete ({exc})") from None


@dataclass(frozen=True)
class AggregateMeta:
    fingerprint: str
    server_round: int
    cohort: int
    values: int
    contributors: int

    def to_array(self) -> Array:
        doc = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "server-round": self.server_round,
            "cohort": self.cohort,
            "values": self.values,
            "contributors": self.contributors,
        }
        return Array(np.frombuffer(json.dumps(doc, sort_keys=True).encode(), dtype=np.uint8))


# -- both sides ---------------------------------------------------------------------------
def coarse_weight(num_examples: int | float) -> int:
    """Data-set size rounded to a power of two: weights metric averages, hides the count."""
    if not num_examples > 0:
        return 1
    return int(2 ** round(math.log2(num_examples)))


def metric_record(metrics: Mapping[str, int | float], num_examples: int | float) -> MetricRecord:
    """A reply's plaintext metrics with `num-examples` coarsened (train and evaluate)."""
    values: dict[str, int | float] = {k: v for k, v in metrics.items() if k != NUM_EXAMPLES}
    values[NUM_EXAMPLES] = coarse_weight(num_examples)
    return MetricRecord(values)  # type: ignore[arg-type]


def is_encrypted(arrays: ArrayRecord) -> bool:
    return META in arrays


def read_meta(arrays: ArrayRecord) -> AggregateMeta:
    try:
        doc = json.loads(arrays[META].numpy().tobytes())
        if doc.get("format") != FORMAT:
            raise HERecordError(f"aggregate format {doc.get('format')!r}, expected {FORMAT!r}")
        return AggregateMeta(
            fingerprint=str(doc["fingerprint"]),
            server_round=int(doc["server-round"]),
            cohort=int(doc["cohort"]),
            values=int(doc["values"]),
            contributors=int(doc["contributors"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, HERecordError):
            raise
        raise HERecordError(f"the aggregate's '{META}' is unreadable ({exc})") from None


def num_values(arrays: ArrayRecord) -> int:
    """Model size of a plaintext or encrypted global model, without decrypting anything."""
    if is_encrypted(arrays):
        return read_meta(arrays).values
    return sum(math.prod(a.shape) for a in arrays.values())


def _rows(arrays: ArrayRecord, chunks: int, width: int, what: str) -> list[bytes]:
    """Chunk rows after checking count and size from the array's metadata, then its data."""
    if CIPHERTEXTS not in arrays:
        raise HERecordError(f"{what} carries no '{CIPHERTEXTS}' array")
    arr = arrays[CIPHERTEXTS]
    if arr.dtype != "uint8" or len(arr.shape) != 2:
        raise HERecordError(f"{what}: '{CIPHERTEXTS}' must be a 2-D uint8 array")
    if arr.shape[0] != chunks:
        raise HERecordError(f"{what} has {arr.shape[0]} chunks, {chunks} expected")
    if arr.shape[1] != width:
        raise HERecordError(f"{what} has chunks of {arr.shape[1]} bytes, {width} expected")
    if len(arr.data) > chunks * width + 4096:
        raise HERecordError(f"{what}: '{CIPHERTEXTS}' holds more bytes than its shape")
    try:
        data = arr.numpy()
    except (ValueError, TypeError, OSError, EOFError) as exc:
        raise HERecordError(f"{what}: '{CIPHERTEXTS}' does not deserialise ({exc})") from None
    if data.dtype != np.uint8 or data.shape != (chunks, width):
        raise HERecordError(f"{what}: '{CIPHERTEXTS}' data disagrees with its declared shape")
    return [row.tobytes() for row in data]


def _ciphertexts(chunks: list[bytes]) -> Array:
    return Array(np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), -1))


# -- coordinator side ---------------------------------------------------------------------
def encrypted_arrays(chunks: list[bytes], meta: AggregateMeta) -> ArrayRecord:
    """The summed ciphertexts as the ArrayRecord Flower carries to the next round."""
    return ArrayRecord({CIPHERTEXTS: _ciphertexts(chunks), META: meta.to_array()})


def unpack_reply(ctx: HEContext, content: RecordDict, expect: RoundSpec) -> list[bytes]:
    """Check a reply against the round, cheapest first; returns its ciphertext chunks."""
    spec = RoundSpec.from_record(content.config_records.get(HE_KEY), "reply")
    if spec.fingerprint != ctx.fingerprint:
        raise HERecordError(
            f"wrong HE context: fingerprint {spec.fingerprint[:16]}…, the federation's is "
            f"{ctx.fingerprint[:16]}…"
        )
    if spec.server_round != expect.server_round:
        raise HERecordError(
            f"wrong round: reply is for round {spec.server_round}, this is round {expect.server_round}"
        )
    if spec.cohort != expect.cohort:
        raise HERecordError(
            f"wrong cohort: encrypted for {spec.cohort} senders, {expect.cohort} were asked"
        )
    if spec.values != expect.values:
        raise HERecordError(
            f"wrong model size: {spec.values} values, the global model has {expect.values}"
        )
    arrays = content.array_records.get(ARRAYS_KEY)
    if arrays is None or len(content.array_records) != 1:
        raise HERecordError(f"reply must carry exactly one ArrayRecord '{ARRAYS_KEY}'")
    chunks = chunk_layout(ctx.params, expect.values).num_chunks
    return _rows(arrays, chunks, ctx.shape.seeded_size(), "reply")


# -- institution side ---------------------------------------------------------------------
def pack_update(
    ctx: SecretContext,
    instruction: RecordDict,
    state: Mapping[str, np.ndarray],
    num_examples: int,
    metrics: Mapping[str, int | float],
) -> RecordDict:
    """The reply content for a train instruction: the encrypted, weighted local model."""
    spec = RoundSpec.from_record(
        instruction.config_records.get(HE_KEY), "the coordinator's message"
    )
    require_fingerprint(ctx.fingerprint, spec.fingerprint, "the coordinator")
    flat, _ = flatten_state(state)
    if flat.size != spec.values:
        raise HERecordError(
            f"the local model has {flat.size} values, the federation's has {spec.values}: "
            "institution and coordinator run different tasks or versions"
        )
    chunks = encrypt_update(ctx, flat, float(num_examples), spec.cohort)
    return RecordDict(
        {
            ARRAYS_KEY: ArrayRecord({CIPHERTEXTS: _ciphertexts(chunks)}),
            HE_KEY: spec.to_record(),
            METRICS_KEY: metric_record(metrics, num_examples),
        }
    )


def unpack_global(
    ctx: SecretContext, instruction: RecordDict, template: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The global model as numpy arrays shaped like `template` (e.g. the local state)."""
    spec = RoundSpec.from_record(
        instruction.config_records.get(HE_KEY), "the coordinator's message"
    )
    require_fingerprint(ctx.fingerprint, spec.fingerprint, "the coordinator")
    arrays = instruction.array_records.get(ARRAYS_KEY)
    if arrays is None:
        raise HERecordError(f"the coordinator's message carries no '{ARRAYS_KEY}' record")
    if not is_encrypted(arrays):
        return {k: a.numpy() for k, a in arrays.items()}
    meta = read_meta(arrays)
    require_fingerprint(ctx.fingerprint, meta.fingerprint, "the global model")
    layout = state_layout(template)
    if layout.size != meta.values:
        raise HERecordError(
            f"the global model has {meta.values} values, the local model {layout.size}: "
            "institution and coordinator run different tasks or versions"
        )
    chunks = chunk_layout(ctx.params, meta.values).num_chunks
    rows = _rows(arrays, chunks, ctx.shape.full_size(), "the global model")
    average = decrypt_average(ctx, rows, meta.values, meta.cohort)
    return layout.unflatten(average.values)
